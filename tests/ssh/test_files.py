"""The files a workspace's sshd reads, on the homes filesystem: who owns them, who may read
them, and that a rewrite is atomic. Checked with the real ssh-keygen."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from labspace.ssh import SshFiles
from labspace.ssh.files import HOST_KEY, KEYS_FILE


async def test_the_host_key_is_made_once_owned_by_the_workspace_user(tmp_path: Path) -> None:
    files = SshFiles(tmp_path / "homes")
    public = await files.ensure_host_key(7, uid=4242)
    private = files.host_dir(7) / HOST_KEY
    assert public.startswith("ssh-ed25519 ")
    assert (private.stat().st_uid, stat.S_IMODE(private.stat().st_mode)) == (4242, 0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True,
                             text=True, check=True).stdout.split()
    assert " ".join(derived[:2]) == public.split(" ", 2)[0] + " " + public.split()[1]
    assert await files.ensure_host_key(7, uid=4242) == public  # kept, not remade
    assert (files.host_dir(7) / f"{HOST_KEY}.pub").read_text().strip() == public
    await files.remove_host_key(7)
    assert not files.host_dir(7).exists()


async def test_nobody_lists_who_has_keys_or_workspaces(tmp_path: Path) -> None:
    files = SshFiles(tmp_path / "homes")
    await files.write_authorized_keys("ada", ["ssh-ed25519 AAAA"])
    await files.ensure_host_key(1, uid=os.getuid())
    for directory in (files.root, files.root / "users", files.root / "workspaces"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o711
    keys = files.keys_dir("ada") / KEYS_FILE
    assert stat.S_IMODE(keys.stat().st_mode) == 0o644 and keys.stat().st_uid == 0


async def test_a_rewrite_replaces_the_file_whole(tmp_path: Path) -> None:
    files = SshFiles(tmp_path / "homes")
    path = await files.write_authorized_keys("ada", ["ssh-ed25519 AAAA", "ssh-rsa BBBB"])
    before = path.stat().st_ino
    await files.write_authorized_keys("ada", ["ssh-rsa BBBB"])
    assert path.read_text() == "ssh-rsa BBBB\n"
    assert path.stat().st_ino != before  # renamed into place: sshd never reads half a file
    assert [p.name for p in path.parent.iterdir()] == [KEYS_FILE]
