"""Storage on the host: users' homes (the lab's NFS mount, or the data dir), the mount flags
they need (``mounts``), the lab's and the groups' shared folders (``groups``), and the private
data directory (``permissions``)."""

from labspace.storage.groups import ensure_group_folder, ensure_shared_folder, folder_name_ok
from labspace.storage.homes import ensure_home, home_path, remove_home, retire_home

__all__ = ["ensure_group_folder", "ensure_home", "ensure_shared_folder", "folder_name_ok",
           "home_path", "remove_home", "retire_home"]
