"""Homes: one directory per user, owned by the user's uid, mode 0700, kept after deletes.

A home belongs to the user, not to a workspace: every workspace of the user mounts the same
directory at /home/<user>, and deleting a workspace never touches it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from labspace.errors import InvalidInput
from labspace.names import validate_user_name


def home_path(homes_dir: Path, user: str) -> Path:
    validate_user_name(user)  # the name becomes a path component: never trust it blindly
    return homes_dir / user


def _ensure_home_sync(homes_dir: Path, user: str, uid: int, gid: int) -> Path:
    homes_dir.mkdir(parents=True, exist_ok=True)
    # Others may list nothing in the homes root; each home is reachable only by its owner.
    os.chmod(homes_dir, 0o711)  # noqa: S103 - traverse only, no listing
    path = home_path(homes_dir, user)
    if path.is_symlink():
        raise InvalidInput(f"home {path} is a symbolic link; refusing to use it")
    path.mkdir(mode=0o700, exist_ok=True)
    stat = path.stat()
    if (stat.st_uid, stat.st_gid) != (uid, gid):
        os.chown(path, uid, gid)  # only the top: never chown -R a user's files
    if stat.st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)
    return path


async def ensure_home(homes_dir: Path, user: str, uid: int, gid: int) -> Path:
    """Create or repair the user's home (ownership and mode of the top directory only)."""
    return await asyncio.to_thread(_ensure_home_sync, homes_dir, user, uid, gid)


RETIRED_DIR = ".deleted"  # not a valid user name: never anyone's home


def _retire_home_sync(homes_dir: Path, user: str, uid: int, stamp: str) -> Path | None:
    path = home_path(homes_dir, user)
    if not path.exists() and not path.is_symlink():
        return None
    retired = homes_dir / RETIRED_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    target = retired / f"{user}-{uid}-{stamp}"
    path.rename(target)  # the same filesystem: a rename, whatever the home's size
    return target


async def retire_home(homes_dir: Path, user: str, uid: int, stamp: str) -> Path | None:
    """Move a deleted user's home out of the way, to <homes>/.deleted/<user>-<uid>-<stamp>:
    kept for an admin, and never handed to someone who gets the same name later."""
    return await asyncio.to_thread(_retire_home_sync, homes_dir, user, uid, stamp)


def _remove_home_sync(homes_dir: Path, user: str) -> bool:
    path = home_path(homes_dir, user)
    if path.is_symlink():  # never follow a link out of the homes
        path.unlink()
        return True
    if not path.exists():
        return False
    shutil.rmtree(path)  # rmtree does not follow symbolic links inside
    return True


async def remove_home(homes_dir: Path, user: str) -> bool:
    """Delete a user's home and everything in it (after the admin confirmed it)."""
    return await asyncio.to_thread(_remove_home_sync, homes_dir, user)
