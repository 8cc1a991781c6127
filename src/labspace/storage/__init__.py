"""Storage: users' homes on a host directory (the lab's NFS mount, or the data dir)."""

from labspace.storage.homes import ensure_home, home_path

__all__ = ["ensure_home", "home_path"]
