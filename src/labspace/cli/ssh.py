"""``labspace login|logout|ssh|config-ssh``: a laptop's way into its user's workspaces.

They talk to the public URL only (the tunnel and the API behind the proxy) and load nothing
of the server (tests/test_layers.py checks it), so `pip install labspace` is all a laptop
needs, with OpenSSH for the ssh commands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer

from labspace.cli.client import (
    Client,
    UrlOption,
    WorkspaceRef,
    connect,
    public_url,
    split_workspace,
)
from labspace.cli.workspaces import start_and_follow
from labspace.errors import (
    Conflict,
    InvalidInput,
    LabspaceError,
    NotAuthenticated,
    RuntimeFailure,
)
from labspace.remote import login as logins
from labspace.remote import sshconfig

KNOWN_HOSTS = "known_hosts"
DEFAULT_PREFIX = "labspace"


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def login(
    url: Annotated[str, typer.Argument(help="labspace's address, e.g. https://lab.example.org",
                                       metavar="URL")],
    no_browser: Annotated[bool, typer.Option(
        "--no-browser", help="Only print the address to open (a headless machine).")] = False,
) -> None:
    """Log this computer in: approve it in a browser where you are logged in to labspace."""
    url = url.rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise InvalidInput(f"not a URL: {url!r} (e.g. https://lab.example.org)")

    def show(page: str, code: str) -> None:
        _err(f"Open this address in a browser and approve the code {code}:\n\n    {page}\n")
        if not no_browser and _has_display():
            webbrowser.open(page)
        _err("Waiting for approval (Ctrl-C to give up)...")

    try:
        done = logins.device_login(url, show)
    except logins.LoginFailed as exc:
        raise NotAuthenticated(str(exc)) from exc
    public_key = logins.ensure_key()
    key_id = None
    if public_key:
        with Client(done.url, done.token) as client:
            key_id = _register(client, public_key)
    previous = logins.load_login()
    logins.save_login(logins.Login(done.url, done.user, done.token, key_id))
    if previous is not None and previous.url == done.url:
        _revoke_quietly(previous.token, done.url)  # one token per computer, not one per login
    _err(f"Logged in to {done.url} as {done.user}.")
    _err("Next: `labspace config-ssh` (then `ssh labspace.NAME`), or `labspace ssh NAME`.")


def _register(client: Client, public_key: str) -> int:
    """This computer's key, registered now or by an earlier login: its id."""
    try:
        key = client.post("/keys", {"public_key": public_key,
                                    "name": f"labspace CLI on {logins.client_name()}"})
    except Conflict:
        wanted = " ".join(public_key.split()[:2])
        key = next(k for k in client.get("/keys") if k["public_key"] == wanted)
    return int(key["id"])


def _revoke_quietly(token: str, url: str) -> None:
    with Client(url, token) as client, contextlib.suppress(LabspaceError):
        client.delete("/tokens/current")


def logout() -> None:
    """Log this computer out: its token ends and its SSH key stops working."""
    saved = logins.load_login()
    if saved is None:
        _err("This computer is not logged in.")
        return
    with Client(saved.url, saved.token) as client:
        try:
            if saved.key_id is not None:
                client.delete(f"/keys/{saved.key_id}")
            client.delete("/tokens/current")
        except NotAuthenticated:
            pass  # revoked or expired already
        except LabspaceError as exc:
            _err(f"warning: the hub was not told ({exc.message}); revoke the token with "
                 "DELETE /hub/api/tokens/ID (GET /hub/api/tokens lists them)")
    logins.forget_login()
    _err(f"Logged out of {saved.url}.")


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def labspace_program() -> list[str]:
    """How ssh's ProxyCommand runs this CLI: the installed `labspace`, else this Python."""
    found = shutil.which("labspace")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "labspace.cli.entry"]


def _entry(client: Client, url: str, owner: str, name: str, prefix: str
           ) -> sshconfig.HostEntry:
    facts = client.get(f"/workspaces/{owner}/{name}/ssh")
    return sshconfig.HostEntry(
        alias=f"{prefix}.{name}",  # a tunnel opens only into one's own workspaces
        user=str(facts["user"]),
        proxy_command=sshconfig.proxy_command(labspace_program(), owner, name, url),
        host_key=str(facts["host_key"]))


def _identity() -> Path | None:
    path = logins.key_path()
    return path if path.is_file() else None


def _known_hosts() -> Path:
    return logins.config_dir() / KNOWN_HOSTS


def _update_known_hosts(entries: list[sshconfig.HostEntry], *, replacing: str) -> Path:
    known = _known_hosts()
    text = known.read_text() if known.is_file() else ""
    sshconfig.write_if_changed(known, sshconfig.merge_known_hosts(text, entries,
                                                                  replacing=replacing))
    return known


def _ensure_running(client: Client, owner: str, name: str) -> None:
    record: dict[str, Any] = client.get(f"/workspaces/{owner}/{name}")
    if record["state"] == "running":
        return
    _err(f"starting {owner}/{name}...")
    record = start_and_follow(client, owner, name, quiet=True)  # stdout is the session's
    if record["state"] != "running":
        raise RuntimeFailure(f"{owner}/{name} is {record['state']}: {record['message']}")


def ssh(
    ref: WorkspaceRef,
    command: Annotated[list[str] | None, typer.Argument(
        help="A command to run instead of a shell (put ssh options before it after --).")
    ] = None,
    url: UrlOption = None,
    prefix: Annotated[str, typer.Option(help="Host names' first part.")] = DEFAULT_PREFIX,
) -> None:
    """Open a shell in a workspace (started first if need be), or run a command there:
    labspace ssh analysis, labspace ssh analysis -- -L 8080:localhost:8080."""
    public = public_url(url)
    ssh_program = shutil.which("ssh")
    if ssh_program is None:
        raise RuntimeFailure("OpenSSH's ssh is not installed on this computer")
    with connect(public) as client:
        owner, name = split_workspace(ref, client)
        _ensure_running(client, owner, name)
        entry = _entry(client, public, owner, name, prefix)
    known = _update_known_hosts([entry], replacing=f"{entry.alias} ")
    args = [ssh_program, "-o", f"ProxyCommand={entry.proxy_command}",
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            "-o", "ServerAliveInterval=30", "-l", entry.user]
    identity = _identity()
    if identity is not None:
        args += ["-i", str(identity)]
    options, remote_command = split_ssh_words(command or [])
    args += [*options, entry.alias, *remote_command]
    os.execv(ssh_program, args)  # noqa: S606 - ssh takes over the terminal, as `ssh` would


def split_ssh_words(words: list[str]) -> tuple[list[str], list[str]]:
    """(ssh's options, the remote command): the leading words that start with "-" are
    options, with the value of those that take one (-L 8080:..., -o X=y, -v)."""
    index = 0
    while index < len(words) and words[index].startswith("-"):
        takes_value = words[index] in ("-L", "-R", "-D", "-o", "-p", "-i", "-F", "-J", "-W",
                                       "-E")
        index += 2 if takes_value else 1
    index = min(index, len(words))
    return words[:index], words[index:]


def config_ssh(
    url: UrlOption = None,
    ssh_config: Annotated[Path, typer.Option(
        "--ssh-config", help="The file to update.")] = Path("~/.ssh/config"),
    prefix: Annotated[str, typer.Option(help="Host names' first part: PREFIX.NAME.")
                      ] = DEFAULT_PREFIX,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the block only.")] = False,
) -> None:
    """Write a Host entry per workspace into ~/.ssh/config (one marked block, updated in
    place), so `ssh labspace.NAME`, scp, rsync and VS Code Remote-SSH work by name."""
    public = public_url(url)
    with connect(public) as client:
        me = client.me()
        entries = [_entry(client, public, me, ws["name"], prefix)
                   for ws in client.get("/workspaces")]
    block = sshconfig.render_block(public, entries, identity=_identity(),
                                   known_hosts=_known_hosts())
    if dry_run:
        sys.stdout.write(block)
        return
    path = ssh_config.expanduser()
    current = path.read_text() if path.is_file() else ""
    changed = sshconfig.write_if_changed(path, sshconfig.replace_block(current, public, block))
    _update_known_hosts(entries, replacing=f"{prefix}.")
    _err(f"{path}: {'updated' if changed else 'unchanged'}, {len(entries)} workspace(s)")
    for entry in entries:
        print(f"ssh {entry.alias}")
