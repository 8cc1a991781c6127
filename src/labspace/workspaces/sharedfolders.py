"""Which shared folders a workspace mounts: the lab's /shared, and /groups/<group> for each of
its owner's groups that has a gid and a folder by the settings."""

from __future__ import annotations

import logging

from labspace.config import Settings
from labspace.errors import InvalidInput
from labspace.runtime import Mount
from labspace.storage import ensure_group_folder, ensure_shared_folder, folder_name_ok
from labspace.workspaces.spec import WorkspaceIdentity

log = logging.getLogger(__name__)

SHARED_TARGET = "/shared"
GROUPS_TARGET = "/groups"


async def shared_mounts(settings: Settings, ws: WorkspaceIdentity) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    if settings.shared_dir is not None:
        path = await ensure_shared_folder(settings.shared_dir)
        mounts.append(Mount(str(path), SHARED_TARGET, settings.shared_read_only))
    root = settings.group_folders_dir
    if root is None:
        return tuple(mounts)
    wanted = {group.lower() for group in settings.group_folders}
    read_only = {group.lower() for group in settings.group_folders_read_only}
    for name, gid in ws.groups:
        if (wanted and name not in wanted) or not folder_name_ok(name):
            continue
        try:
            path = await ensure_group_folder(root, name, gid)
        except (InvalidInput, OSError) as error:  # the workspace starts without that folder
            log.warning("no folder for group %s (gid %d): %s", name, gid, error)
            continue
        mounts.append(Mount(str(path), f"{GROUPS_TARGET}/{name}", name in read_only))
    return tuple(mounts)
