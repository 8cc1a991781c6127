"""The files a workspace's SSH server reads, kept on the homes filesystem (every node of a
swarm mounts it at the same path, as the homes themselves) and bind-mounted read-only:

* ``<homes>/.labspace-ssh/users/<user>/authorized_keys``: the user's keys, rewritten (by
  rename) whenever they change; sshd reads it at every login, so a removed key stops
  working at once, with no restart. Owned by root: nobody inside a workspace changes it.
* ``<homes>/.labspace-ssh/workspaces/<id>/ssh_host_ed25519_key``: the workspace's own host
  key, made once, kept across restarts and rebuilds, removed with the workspace. Owned by
  the workspace's user, because its sshd runs as that user. The hub keeps the public half
  for the known-hosts entries it hands out.

A name like ``.labspace-ssh`` can never be a user's home: user names start with a letter.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from labspace.names import validate_user_name

ROOT = ".labspace-ssh"
KEYS_FILE = "authorized_keys"
HOST_KEY = "ssh_host_ed25519_key"
# Where the workspace image's sshd looks (images/files/sshd_config).
KEYS_TARGET = "/etc/labspace/ssh/keys"
HOST_TARGET = "/etc/labspace/ssh/host"
SSH_PORT = 22  # where it listens in the workspace


class SshFiles:
    def __init__(self, homes: Path) -> None:
        self.root = homes / ROOT

    def keys_dir(self, user: str) -> Path:
        validate_user_name(user)
        return self.root / "users" / user

    def host_dir(self, workspace_id: int) -> Path:
        return self.root / "workspaces" / str(int(workspace_id))

    async def write_authorized_keys(self, user: str, lines: list[str]) -> Path:
        return await asyncio.to_thread(self._write_keys, user, lines)

    async def ensure_host_key(self, workspace_id: int, uid: int) -> str:
        """The workspace's host public key ("ssh-ed25519 AAAA..."), made on first use."""
        return await asyncio.to_thread(self._ensure_host_key, workspace_id, uid)

    async def remove_user(self, user: str) -> None:
        """A deleted user's key files."""
        await asyncio.to_thread(shutil.rmtree, self.keys_dir(user), True)

    async def remove_host_key(self, workspace_id: int) -> None:
        await asyncio.to_thread(shutil.rmtree, self.host_dir(workspace_id), True)

    def _make_dir(self, directory: Path) -> None:
        """``directory`` (mode 0755: sshd checks no one else may write it) below parents
        only root lists: nobody learns from the homes who has keys or workspaces."""
        self.root.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # the homes
        for parent in (self.root, directory.parent):
            parent.mkdir(mode=0o711, exist_ok=True)
            os.chmod(parent, 0o711)  # noqa: S103 - traverse only
        directory.mkdir(mode=0o755, exist_ok=True)

    def _write_keys(self, user: str, lines: list[str]) -> Path:
        directory = self.keys_dir(user)
        self._make_dir(directory)
        path = directory / KEYS_FILE
        temporary = directory / f".{KEYS_FILE}.{os.getpid()}"
        temporary.write_text("".join(line + "\n" for line in lines))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)  # sshd sees the old file or the new one, never half
        return path

    def _ensure_host_key(self, workspace_id: int, uid: int) -> str:
        directory = self.host_dir(workspace_id)
        self._make_dir(directory)
        private, public = directory / HOST_KEY, directory / f"{HOST_KEY}.pub"
        if not (private.is_file() and public.is_file()):
            key = Ed25519PrivateKey.generate()
            temporary = directory / f".{HOST_KEY}.{os.getpid()}"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.OpenSSH,
                                            serialization.NoEncryption()))
            public.write_text(key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            ).decode() + "\n")
            os.replace(temporary, private)
        # The workspace's sshd runs as its user, and refuses a key others may read.
        if private.stat().st_uid != uid:
            os.chown(private, uid, uid)
        return public.read_text().strip()
