"""Start-up shared by the long-running servers (hub and proxy): process tuning and settings."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys

from pydantic import ValidationError

from labspace.config import Settings, load_settings

M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread its own malloc arena; thread pools (aiosqlite, to_thread) then
    hold many half-empty arenas. Two arenas keep the resident size small at no measurable cost
    for these I/O-bound processes. Same as MALLOC_ARENA_MAX=2, without relying on the caller."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_ARENA_MAX, arenas)


def server_settings(program: str) -> Settings:
    """Tune the process, then load the settings; a bad configuration exits with its errors."""
    limit_malloc_arenas()
    try:
        return load_settings()
    except ValidationError as error:
        sys.exit(f"{program}: bad configuration: {error}")
