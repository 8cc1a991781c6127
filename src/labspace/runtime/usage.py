"""What running containers use, cheaply: CPU time and memory, read as counters.

The load page samples every container each couple of seconds. A ``docker stats`` per
container is an HTTP round trip the engine answers by reading these same cgroup files (and,
without ``one-shot``, by waiting a second for a second sample). Where the engine runs on
this host the hub reads the files itself; the engine's one-shot stats are the fallback
(an engine on another host, or a cgroup layout not known here).

Counters, not rates: CPU time only grows, so the caller turns two readings into a rate over
its own interval and every source agrees on what a number means.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import aiodocker
from aiodocker.exceptions import DockerError

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Usage:
    """One container's counters at one moment."""

    cpu_ns: int  # CPU time used since the container started
    memory_bytes: int  # in use, without the reclaimable page cache (as `docker stats`)
    memory_limit_bytes: int | None = None  # None: none configured (or not known)


@runtime_checkable
class UsageSource(Protocol):
    async def usage(self, container_ids: Sequence[str]) -> dict[str, Usage]:
        """The counters of those of ``container_ids`` it can read now; one that is gone
        or unreadable is left out (no error: usage is best effort)."""
        ...


def _read(path: str) -> bytes | None:
    # os.open/os.read: half the CPU of open().read() (no buffered text layer), which counts
    # at a hundred containers a tick.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 16384)
    except OSError:
        return None
    finally:
        os.close(fd)


def _int(data: bytes | None) -> int | None:
    value = data.strip() if data is not None else b""
    return int(value) if value.isdigit() else None


def _field(data: bytes | None, name: bytes) -> int | None:
    """The value of ``name`` in a flat-keyed cgroup stat file (memory.stat, cpu.stat)."""
    if data is None:
        return None
    key = name + b" "
    if data.startswith(key):
        at = len(key)
    else:
        at = data.find(b"\n" + key)
        if at < 0:
            return None
        at += len(key) + 1
    end = data.find(b"\n", at)
    return _int(data[at:end if end >= 0 else None])


def _limit(value: int | None) -> int | None:
    # cgroup v1 writes "no limit" as a page-aligned 2**63 - 1; v2 as "max" (not a digit).
    return value if value is not None and value < 1 << 62 else None


def read_cgroup(root: Path, container_id: str, *, limit: bool = True) -> Usage | None:
    """A container's counters from its cgroup files: v1 with the cgroupfs driver, or v2
    with the systemd or the cgroupfs driver. None when none of them is there. ``limit``
    False: its memory limit is not read (memory_limit_bytes None)."""
    cpu_ns = _int(_read(f"{root}/cpuacct/docker/{container_id}/cpuacct.usage"))
    if cpu_ns is not None:
        memory = f"{root}/memory/docker/{container_id}"
        used = _int(_read(f"{memory}/memory.usage_in_bytes")) or 0
        inactive = _field(_read(f"{memory}/memory.stat"), b"total_inactive_file") or 0
        return Usage(cpu_ns, max(0, used - inactive),
                     _limit(_int(_read(f"{memory}/memory.limit_in_bytes"))) if limit else None)
    for unified in (f"{root}/system.slice/docker-{container_id}.scope",
                    f"{root}/docker/{container_id}"):
        cpu_us = _field(_read(f"{unified}/cpu.stat"), b"usage_usec")
        if cpu_us is not None:
            used = _int(_read(f"{unified}/memory.current")) or 0
            inactive = _field(_read(f"{unified}/memory.stat"), b"inactive_file") or 0
            return Usage(cpu_us * 1000, max(0, used - inactive),
                         _limit(_int(_read(f"{unified}/memory.max"))) if limit else None)
    return None


StatsOnce = Callable[[str], Awaitable[dict[str, Any] | None]]


async def stats_once(docker: aiodocker.Docker, container_id: str) -> dict[str, Any] | None:
    """The engine's stats of one container, or None if it is gone (no error: it may have
    stopped since it was listed)."""
    try:  # one-shot: the engine answers at once instead of sampling for a second
        answer = await docker._query_json(f"containers/{container_id}/stats", method="GET",
                                          params={"stream": "false", "one-shot": "true"})
    except DockerError:
        return None
    return answer if isinstance(answer, dict) else None


def usage_from_stats(stats: dict[str, Any]) -> Usage | None:
    """The engine's stats answer (GET /containers/{id}/stats) as counters."""
    cpu = stats.get("cpu_stats")
    memory = stats.get("memory_stats")
    if not isinstance(cpu, dict) or not isinstance(memory, dict):
        return None
    total = (cpu.get("cpu_usage") or {}).get("total_usage")
    if not isinstance(total, int):
        return None
    used = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in detail:
            used = max(0, used - int(detail[key]))
            break
    return Usage(total, used, None)


class CgroupUsage:
    """Counters read from this host's cgroup files, and from ``fallback`` (the engine's
    one-shot stats) for the containers whose files are not found here. The files are
    read in one worker thread per sample, off the event loop."""

    def __init__(self, fallback: StatsOnce | None = None, root: Path = CGROUP_ROOT) -> None:
        self.root = root
        self.fallback = fallback
        self._limits: dict[str, int | None] = {}

    async def usage(self, container_ids: Sequence[str]) -> dict[str, Usage]:
        ids = list(container_ids)
        found = await asyncio.to_thread(self._read_all, ids)
        missing = [cid for cid in ids if cid not in found]
        if missing and self.fallback is not None:
            answers = await asyncio.gather(*(self.fallback(cid) for cid in missing))
            for cid, answer in zip(missing, answers, strict=True):
                usage = usage_from_stats(answer) if answer else None
                if usage is not None:
                    found[cid] = usage
        return found

    def _read_all(self, ids: list[str]) -> dict[str, Usage]:
        found = {}
        for cid in ids:
            known = cid in self._limits
            usage = read_cgroup(self.root, cid, limit=not known)
            if usage is None:
                continue
            if known:
                usage = replace(usage, memory_limit_bytes=self._limits[cid])
            else:
                self._limits[cid] = usage.memory_limit_bytes
            found[cid] = usage
        # A limit is read once per container (`docker update` of a running workspace is
        # rare); forget the containers that are gone.
        self._limits = {cid: self._limits[cid] for cid in found}
        return found
