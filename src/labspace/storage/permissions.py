"""The data directory is private: only its owner may read or list it.

It holds the database (password hashes and every workspace's secret), the key that signs
CSRF tokens and the admin's API token. Files are created private (0600, the directory 0700);
at start-up the hub and the proxy check, and repair with a warning anything a restored
backup, a copy or a hand-made file left readable by others.

Users' homes (``data_dir/homes`` by default) are left alone: dockerd (root) bind-mounts each
one into its workspaces, so a private data directory does not lock anyone out of their home.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from labspace.config import Settings
from labspace.errors import LabspaceError

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
# Files in the data directory that hold secrets. The SQLite files come from the database URL
# (the database may live elsewhere); these are the rest.
SECRET_FILES = ("secret_key", "admin-token")
# SQLite's companions of a database file: they hold pages of it.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


class InsecureDataDir(LabspaceError):
    """A secret file is readable by others and could not be made private."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL (``sqlite+aiosqlite:///path``); None otherwise."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def secret_paths(settings: Settings) -> list[Path]:
    """Every file that must be private, whether or not it exists yet."""
    paths = [settings.data_dir / name for name in SECRET_FILES]
    database = sqlite_path(settings.db_url)
    if database is not None:
        paths += [database.with_name(database.name + suffix) for suffix in SQLITE_SUFFIXES]
    return paths


def _make_private(path: Path, mode: int) -> str | None:
    """Take group and other permissions away from ``path``; what was done, or None."""
    try:
        old = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if not old & 0o077:
        return None
    try:
        os.chmod(path, mode)
    except OSError as error:
        command = f"chmod {mode:o} {path}"
        raise InsecureDataDir(
            f"{path} is readable by others (mode {old:04o}) and cannot be made private "
            f"({error.strerror or error}): run `{command}` as its owner, then start again"
        ) from error
    return f"{path} was mode {old:04o}, readable by others: changed to {mode:04o}"


def secure_data_dir(settings: Settings) -> list[str]:
    """Create the data directory private, or make it and its secret files private.

    Returns what was repaired (each also logged as a warning); raises InsecureDataDir when a
    repair fails, with the command to run. Called at start-up by the hub and the proxy."""
    data_dir = settings.data_dir
    if not data_dir.exists():
        data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    repaired = [_make_private(data_dir, DIR_MODE)]
    repaired += [_make_private(path, FILE_MODE) for path in secret_paths(settings)]
    done = [message for message in repaired if message]
    for message in done:
        log.warning("data directory: %s", message)
    return done
