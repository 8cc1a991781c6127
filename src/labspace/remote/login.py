"""The laptop's side of ``labspace login``: the device flow, and where its result is kept.

``~/.config/labspace/login.json`` (mode 0600) holds the hub's URL, the user and the token;
``~/.config/labspace/id_ed25519`` is an SSH key made on this computer for labspace (its
private half never leaves it; the hub only learns the public half, as one of the user's
keys, named after this computer, and forgets it at ``labspace logout``).
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `labspace tunnel` reads the login without it
    import httpx

TOKEN_ENV = "LABSPACE_TOKEN"  # a token given by hand wins over the saved login
LOGIN_FILE = "login.json"
KEY_FILE = "id_ed25519"


class LoginFailed(Exception):
    """The login did not happen: refused, expired, or the hub could not be reached."""


@dataclass(frozen=True)
class Login:
    url: str
    user: str
    token: str
    key_id: int | None = None


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "labspace"


def key_path() -> Path:
    return config_dir() / KEY_FILE


def load_login() -> Login | None:
    try:
        data = json.loads((config_dir() / LOGIN_FILE).read_text())
        return Login(str(data["url"]), str(data["user"]), str(data["token"]),
                     data.get("key_id"))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def save_login(login: Login) -> Path:
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / LOGIN_FILE
    temporary = directory / f".{LOGIN_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(login), out, indent=2)
    os.replace(temporary, path)
    return path


def forget_login() -> None:
    for path in (config_dir() / LOGIN_FILE, key_path(), key_path().with_suffix(".pub")):
        path.unlink(missing_ok=True)


def client_name() -> str:
    """How the approval page names this computer: "ada@laptop"."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name is no reason to fail a login
        user = "someone"
    return f"{user}@{platform.node() or 'a computer'}"[:100]


def device_login(url: str, show: Callable[[str, str], None], *,
                 http: httpx.Client | None = None) -> Login:
    """Ask the hub at ``url`` for a login, call ``show(page_url, user_code)``, and wait until
    the user approves it in a browser (or refuses it, or it expires)."""
    import httpx

    http = http or httpx.Client(timeout=30.0)
    base = url.rstrip("/")
    try:
        started = http.post(f"{base}/hub/api/cli-logins", json={"client": client_name()})
    except httpx.TransportError as exc:
        raise LoginFailed(f"cannot reach labspace at {base}: {exc}") from exc
    if started.status_code != 201:
        raise LoginFailed(f"{base} did not start a login (HTTP {started.status_code}): "
                          f"{_message(started)}")
    flow = started.json()
    show(str(flow["verification_uri_complete"]), str(flow["user_code"]))
    deadline = time.monotonic() + float(flow["expires_in"])
    interval = max(float(flow.get("interval", 1)), 0.5)
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            answer = http.post(f"{base}/hub/api/cli-logins/token",
                               json={"device_code": flow["device_code"]})
        except httpx.TransportError:
            continue  # a hiccup of the network or a restarting hub: keep asking
        body = answer.json() if answer.headers.get("content-type", "").startswith(
            "application/json") else {}
        if answer.status_code == 200:
            return Login(base, str(body["user"]), str(body["token"]))
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 1
            continue
        raise LoginFailed(str(body.get("error_description") or error or _message(answer)))
    raise LoginFailed("the login was not approved in time; run `labspace login` again")


def ensure_key() -> str | None:
    """This computer's labspace SSH key (made with ssh-keygen on first use); the public line,
    or None where OpenSSH is not installed."""
    private = key_path()
    public = private.with_suffix(".pub")
    if not (private.is_file() and public.is_file()):
        keygen = shutil.which("ssh-keygen")
        if keygen is None:
            return None
        private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private.unlink(missing_ok=True)
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C",
                        f"labspace {client_name()}", "-f", str(private)],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return public.read_text().strip()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or body)
    return str(body)[:200]
