"""Shared folders on the host: the lab-wide one (mounted at /shared in every workspace) and
one per group (mounted at /groups/<group> in the workspaces of its members only).

A group folder is owned by root and the group's gid, mode 2770 (setgid: what a member makes
there belongs to the group). The filesystem is what keeps non-members out; mounting a folder
only into members' workspaces also keeps it from root inside a workspace with sudo.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from pathlib import Path

from labspace.errors import InvalidInput

log = logging.getLogger(__name__)

# A group's name becomes a path component and a mount target: a safe subset only (lower-case
# letters, digits, '.', '_', '-'; no leading dot). Other groups get no folder.
_FOLDER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
GROUP_FOLDER_MODE = 0o2770
SHARED_MODE = 0o1777  # everyone writes; only a file's owner removes it (as /tmp)


def folder_name_ok(group: str) -> bool:
    return bool(_FOLDER_NAME.fullmatch(group))


def _ensure_dir(path: Path, uid: int, gid: int, mode: int) -> Path:
    if path.is_symlink():
        raise InvalidInput(f"{path} is a symbolic link; refusing to use it")
    path.mkdir(mode=mode & 0o777, exist_ok=True)
    found = path.stat()
    if (found.st_uid, found.st_gid) != (uid, gid):
        os.chown(path, uid, gid)  # only the top: never chown -R the members' files
    if stat.S_IMODE(found.st_mode) != mode:
        os.chmod(path, mode)
    return path


def _ensure_group_folder_sync(root: Path, group: str, gid: int) -> Path:
    if not folder_name_ok(group):
        raise InvalidInput(f"the group name {group!r} cannot name a folder")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o711)  # noqa: S103 - traverse only: nobody lists the groups' folders
    return _ensure_dir(root / group, 0, gid, GROUP_FOLDER_MODE)


async def ensure_group_folder(root: Path, group: str, gid: int) -> Path:
    """Create or repair a group's folder (owner, group and mode of the top only)."""
    return await asyncio.to_thread(_ensure_group_folder_sync, root, group, gid)


async def ensure_shared_folder(path: Path) -> Path:
    """Create the lab-wide folder when it is missing (an admin's existing one is left as
    the admin made it: its owner and mode are a policy)."""
    def make() -> Path:
        if path.is_symlink():
            raise InvalidInput(f"{path} is a symbolic link; refusing to use it")
        if not path.exists():
            path.mkdir(parents=True)
            os.chmod(path, SHARED_MODE)
        return path
    return await asyncio.to_thread(make)
