"""Storage on the host: users' homes (the lab's NFS mount, or the data dir), the mount flags
they need (``mounts``), and the private data directory (``permissions``)."""

from labspace.storage.homes import ensure_home, home_path

__all__ = ["ensure_home", "home_path"]
