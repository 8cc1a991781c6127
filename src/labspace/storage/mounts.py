"""Whether the homes' filesystem honours setuid bits and device files.

With ``sudo = true`` a workspace's user is root inside it, and its home is a host directory.
Root in the container can leave a setuid-root program, or a device node (Docker grants
CAP_MKNOD), in the home: on a host filesystem mounted without ``nosuid,nodev`` anyone on the
host who runs that program becomes root, and the device node reads the host's disks.
labspace cannot fix a mount, so it says so: in the hub's log at start and on the admin page.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

ADVICE = ("mount it with `nosuid,nodev` (for NFS also with root squash where it applies), "
          "or set homes_dir to a directory on such a mount")


def mount_problem(homes: Path, result: os.statvfs_result) -> str | None:
    """What is unsafe about the filesystem ``result`` describes, for people; None if nothing."""
    missing = [name for name, flag in (("nosuid", os.ST_NOSUID), ("nodev", os.ST_NODEV))
               if not result.f_flag & flag]
    if not missing:
        return None
    return (f"homes ({homes}) are on a filesystem mounted without {','.join(missing)}: "
            f"root in a workspace with sudo can leave setuid-root programs or device files "
            f"there that work on the host; {ADVICE}")


def homes_mount_problem(homes: Path) -> str | None:
    """Check the filesystem that holds (or will hold, when it does not exist yet) the homes."""
    existing = homes
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return mount_problem(homes, os.statvfs(existing))


def warn_about_homes_mount(homes: Path) -> str | None:
    """Log a warning when the homes' filesystem honours setuid bits or device files."""
    problem = homes_mount_problem(homes)
    if problem:
        log.warning("%s", problem)
    return problem
