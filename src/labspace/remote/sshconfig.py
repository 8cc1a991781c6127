"""``labspace config-ssh``: workspaces by name for plain ssh, scp, rsync and VS Code.

One marked block in ``~/.ssh/config`` (one per labspace URL), rewritten in place on every
run and nowhere else: the user's own entries are never touched. Each workspace gets::

    Host labspace.analysis
        User ada
        ProxyCommand /usr/local/bin/labspace tunnel ada/analysis --url https://lab.example.org
        ...

and its host key goes to labspace's own known-hosts file, so the first connection asks
nothing and a changed key is refused. The block goes first in a new file's order, because ssh
takes the first value it finds for each option and a user's ``Host *`` defaults often come
later; its ``Host`` names match only labspace's workspaces.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostEntry:
    alias: str  # "labspace.analysis"
    user: str
    proxy_command: str
    host_key: str  # "ssh-ed25519 AAAA..."


def begin_marker(url: str) -> str:
    return f"# --- BEGIN labspace {url}: written by `labspace config-ssh`; edits here are lost"


def end_marker(url: str) -> str:
    return f"# --- END labspace {url}"


def proxy_command(program: list[str], owner: str, workspace: str, url: str) -> str:
    return shlex.join([*program, "tunnel", f"{owner}/{workspace}", "--url", url])


def render_block(url: str, entries: list[HostEntry], *, identity: Path | None,
                 known_hosts: Path) -> str:
    lines = [begin_marker(url)]
    for entry in entries:
        lines += [f"Host {entry.alias}",
                  f"    User {entry.user}",
                  f"    ProxyCommand {entry.proxy_command}",
                  f"    UserKnownHostsFile {_path(known_hosts)}",
                  "    StrictHostKeyChecking yes",
                  "    ServerAliveInterval 30"]
        if identity is not None:
            lines.append(f"    IdentityFile {_path(identity)}")
    lines.append(end_marker(url))
    return "\n".join(lines) + "\n"


def _path(path: Path) -> str:
    # ssh's config splits on spaces; quotes keep a home like "/Users/Ada Lovelace" whole.
    text = str(path)
    return f'"{text}"' if " " in text else text


def replace_block(text: str, url: str, block: str) -> str:
    """``text`` with the block for ``url`` replaced by ``block`` (or put first)."""
    pattern = re.compile(
        rf"^{re.escape(begin_marker(url))}\n.*?^{re.escape(end_marker(url))}\n?",
        re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _match: block, text, count=1)
    return block + ("\n" + text if text else "")


def known_hosts_lines(entries: list[HostEntry]) -> list[str]:
    return [f"{entry.alias} {entry.host_key}" for entry in entries]


def merge_known_hosts(text: str, entries: list[HostEntry], *, replacing: str) -> str:
    """Known hosts with ``entries``' keys instead of every line that starts with
    ``replacing`` ("labspace.": a deleted workspace's key goes too); other lines stay."""
    kept = [line for line in text.splitlines()
            if line.strip() and not line.startswith(replacing)]
    return "\n".join([*kept, *known_hosts_lines(entries)]) + "\n"


def write_if_changed(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write ``text`` atomically, private to the user; False when it was already so."""
    if path.is_symlink():  # a dotfiles manager's link: write where it points, keep the link
        path = path.resolve()
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.labspace-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if path.exists():
        os.chmod(temporary, path.stat().st_mode & 0o777 & ~0o022)  # never group/world-writable
    os.replace(temporary, path)
    return True
