"""A small synchronous client of the hub's REST API, shared by the CLI's sub-commands.

The CLI runs on the server (usually as root), so by default it talks to the hub's internal
address (``settings.hub_address``) with the admin token that ``labspace init`` keeps in
``<data_dir>/admin-token``. ``--url`` / ``LABSPACE_URL`` and ``LABSPACE_TOKEN`` override them.

HTTP errors become labspace's own errors (so the exit codes match the error class), with the
hub's ``error`` message; a hub that does not answer becomes one clear sentence.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from labspace.errors import (
    Conflict,
    InvalidInput,
    LabspaceError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RuntimeFailure,
)
from labspace.remote.login import TOKEN_ENV

URL_ENV = "LABSPACE_URL"
API_PREFIX = "/hub/api"

# Options every hub-talking command accepts (declared once, reused by the sub-apps).
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=URL_ENV,
        show_envvar=True,
        help="Hub address (default: the configured hub_address, e.g. http://127.0.0.1:8081).",
    ),
]
# A workspace argument: NAME (the caller's own) or OWNER/NAME (split_workspace).
WorkspaceRef = Annotated[str, typer.Argument(help="NAME (yours) or OWNER/NAME.",
                                             metavar="[OWNER/]NAME")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON instead of a table (for scripts).")
]

# The reverse of each error class's http_status (the hub's translation), plus FastAPI's 422.
_ERROR_CLASSES: tuple[type[LabspaceError], ...] = (
    InvalidInput, NotAuthenticated, PermissionDenied, NotFound, Conflict
)
_STATUS_ERRORS: dict[int, type[LabspaceError]] = {
    **{cls.http_status: cls for cls in _ERROR_CLASSES}, 422: InvalidInput
}


def error_for(response: httpx.Response) -> LabspaceError:
    """The labspace error matching a failed response, carrying the hub's message."""
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    elif isinstance(body, dict) and "detail" in body:
        message = str(body["detail"])
    if not message:
        message = response.text.strip()[:300] or response.reason_phrase or "request failed"
    status = response.status_code
    if status >= 500:
        return RuntimeFailure(message, detail=f"HTTP {status}")
    cls = _STATUS_ERRORS.get(status, LabspaceError)
    return cls(message, detail=f"HTTP {status}")


def _not_running(url: str) -> RuntimeFailure:
    return RuntimeFailure(
        f"the labspace hub is not running at {url}: start it with `labspace serve` "
        "(or systemctl start labspace-hub)"
    )


def read_token(data_dir: Path) -> str:
    """LABSPACE_TOKEN, else the admin token file that ``labspace init`` wrote."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    from labspace.hub import ADMIN_TOKEN_FILE

    path = data_dir / ADMIN_TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise NotAuthenticated(
            f"no API token: set {TOKEN_ENV}, or run `labspace init` (it writes {path})"
        ) from None
    except PermissionError:
        raise NotAuthenticated(
            f"cannot read {path} (run as root, or set {TOKEN_ENV})"
        ) from None
    if not token:
        raise NotAuthenticated(f"{path} is empty: run `labspace init` again, or set {TOKEN_ENV}")
    return token


class Client:
    """The hub's API: ``get``/``post``/``delete`` return the decoded JSON or raise."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as error:
            raise _not_running(self.base_url) from error
        except httpx.TimeoutException as error:
            raise RuntimeFailure(f"the labspace hub at {self.base_url} did not answer in time"
                                 ) from error
        except httpx.TransportError as error:
            raise RuntimeFailure(f"cannot talk to the labspace hub at {self.base_url}: {error}"
                                 ) from error
        if response.is_error:
            raise error_for(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return _decode(self.request("GET", path, params=params or None))

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return _decode(self.request("POST", path, json=body, params=params or None))

    def put(self, path: str, body: Any = None) -> Any:
        return _decode(self.request("PUT", path, json=body))

    def delete(self, path: str, **params: Any) -> Any:
        return _decode(self.request("DELETE", path, params=params or None))

    def text(self, path: str, **params: Any) -> str:
        return self.request("GET", path, params=params or None).text

    def me(self) -> str:
        """Name of the user the token belongs to."""
        return str(self.get("/me")["name"])

    def events(
        self, owner: str, name: str, *, after: int = 0, follow: bool = True
    ) -> Iterator[dict[str, Any]]:
        """A workspace's progress events (server-sent), until the workspace settles."""
        params: dict[str, str | int] = {"after": after, "follow": str(follow).lower()}
        path = f"/workspaces/{owner}/{name}/events"
        # Keep-alive comments arrive every 15 s, so a read timeout only hits a dead hub.
        timeout = httpx.Timeout(10.0, read=120.0)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout,
                                   headers={"Accept": "text/event-stream"}) as response:
                if response.is_error:
                    response.read()
                    raise error_for(response)
                yield from parse_sse(response.iter_lines())
        except httpx.ConnectError as error:
            raise _not_running(self.base_url) from error
        except httpx.TransportError as error:
            raise RuntimeFailure(
                f"lost the progress stream from the hub at {self.base_url}: {error}"
            ) from error


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def parse_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Decode ``event: progress`` messages of a server-sent event stream into dicts."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data and event == "progress":
                yield from _decode_data(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data and event == "progress":
        yield from _decode_data(data)


def _decode_data(data: list[str]) -> Iterator[dict[str, Any]]:
    try:
        value = json.loads("\n".join(data))
    except ValueError:
        return
    if isinstance(value, dict):
        yield value


def connect(url: str | None = None) -> Client:
    """A client for the hub at ``url`` (default: the configured hub address).

    The token: LABSPACE_TOKEN; else the ``labspace login`` of this computer when ``url`` is
    its URL or none is given (a laptop); else the admin token of this server."""
    if not os.environ.get(TOKEN_ENV):
        from labspace.remote.login import load_login

        login = load_login()
        if login is not None and (url is None or url.rstrip("/") == login.url):
            return Client(login.url, login.token)
    data_dir: Path | None = None
    if url is None or not os.environ.get(TOKEN_ENV):
        from labspace.cli.server import settings_or_exit

        settings = settings_or_exit()
        url = url or settings.hub_address
        data_dir = settings.data_dir
    token = read_token(data_dir or Path("."))
    return Client(url, token)


def public_url(url: str | None) -> str:
    """--url, LABSPACE_URL, this computer's login, or (on the server) its public URL."""
    chosen = url or os.environ.get(URL_ENV)
    if chosen:
        return chosen.rstrip("/")
    from labspace.remote.login import load_login

    saved = load_login()
    if saved is not None:
        return saved.url
    from labspace.cli.server import settings_or_exit

    return settings_or_exit().url


def print_json(data: Any) -> None:
    """The API's JSON, as is, on stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def split_workspace(ref: str, client: Client) -> tuple[str, str]:
    """``OWNER/NAME`` or ``NAME`` (owned by the token's user) -> (owner, name)."""
    owner, slash, name = ref.rpartition("/")
    if not slash:
        return client.me(), ref
    if not owner or not name or "/" in owner:
        raise InvalidInput(f"not a workspace: {ref!r} (use NAME or OWNER/NAME)")
    return owner, name
