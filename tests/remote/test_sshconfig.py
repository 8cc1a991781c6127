"""The ~/.ssh/config block and the known-hosts file that `labspace config-ssh` keeps: only
its own lines change, a re-run with the same workspaces changes nothing, and what it writes
is what ssh itself reads (checked with `ssh -G`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from labspace.remote.sshconfig import (
    HostEntry,
    merge_known_hosts,
    proxy_command,
    render_block,
    replace_block,
    write_if_changed,
)

URL = "https://lab.example.org"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE"


def _entry(name: str) -> HostEntry:
    return HostEntry(f"labspace.{name}", "ada",
                     proxy_command(["/opt/my tools/labspace"], "ada", name, URL), KEY)


def test_the_block_replaces_itself_and_leaves_the_users_lines(tmp_path: Path) -> None:
    mine = "Host work\n    HostName work.example.org\n"
    block = render_block(URL, [_entry("lab")], identity=tmp_path / "id",
                         known_hosts=tmp_path / "known hosts")
    first = replace_block(mine, URL, block)
    assert first.startswith("# --- BEGIN labspace") and first.endswith(mine)
    newer = render_block(URL, [_entry("lab"), _entry("gpu")], identity=None,
                         known_hosts=tmp_path / "kh")
    second = replace_block(first, URL, newer)
    assert second == newer + "\n" + mine
    assert replace_block(second, URL, newer) == second
    other = render_block("https://other.example.org", [_entry("x")], identity=None,
                         known_hosts=tmp_path / "kh")
    both = replace_block(second, "https://other.example.org", other)
    assert newer in both and other in both


def test_ssh_reads_what_the_block_says(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(render_block(URL, [_entry("lab")], identity=tmp_path / "id key",
                                   known_hosts=tmp_path / "known hosts"))
    seen = subprocess.run(["ssh", "-G", "-F", str(config), "labspace.lab"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    options = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in seen if " " in line}
    assert options["user"] == "ada"
    assert options["proxycommand"] == (
        "'/opt/my tools/labspace' tunnel ada/lab --url https://lab.example.org")
    assert options["userknownhostsfile"] == str(tmp_path / "known hosts")
    assert options["identityfile"] == str(tmp_path / "id key")
    assert options["stricthostkeychecking"] == "true"


def test_known_hosts_keep_other_lines_and_drop_deleted_workspaces() -> None:
    text = "github.com ssh-ed25519 AAAA\nlabspace.old ssh-ed25519 BBBB\n"
    merged = merge_known_hosts(text, [_entry("lab")], replacing="labspace.")
    assert merged.splitlines() == ["github.com ssh-ed25519 AAAA", f"labspace.lab {KEY}"]


def test_writes_are_private_atomic_and_follow_a_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o664)
    link = tmp_path / "config"
    link.symlink_to(real)
    assert write_if_changed(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n"
    assert real.stat().st_mode & 0o777 == 0o644  # never group- or world-writable
    assert not write_if_changed(link, "new\n")
    fresh = tmp_path / "fresh" / "known_hosts"
    assert write_if_changed(fresh, "x\n") and fresh.stat().st_mode & 0o777 == 0o600
