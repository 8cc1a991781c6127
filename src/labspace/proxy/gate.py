"""The proxy's checks before it forwards to a workspace: who is asking, and from which page.

A cookie comes with every request the browser makes to its host, whichever page asked for
it, and ``SameSite`` does not help between two hosts of one site (another port of the same
host, a sibling workspace host). So a cookie-authenticated WebSocket upgrade or state-changing
request is forwarded only when its ``Origin`` is the origin it was sent to. An API token in
an ``Authorization`` header is never sent by a browser on its own, so it needs no such check.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import unquote

from aiohttp import web

from labspace.identity.credentials import MAX_TOKEN_LENGTH, digest
from labspace.origins import Origins

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    """A person the proxy authenticated, and the credential that did it."""

    user: str
    is_admin: bool
    digest: str  # the credential's SHA-256 digest: what a revocation names
    via_cookie: bool

    def may_open(self, owner: str) -> bool:
        return self.user == owner or self.is_admin


# Every request hashes its credential to look it up: remember the last few thousand.
token_digest = functools.lru_cache(maxsize=4096)(digest)


def bearer_digest(request: web.BaseRequest) -> str | None:
    """The digest of an ``Authorization: Bearer|token <token>`` header's token, if any."""
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if not value or len(value) > MAX_TOKEN_LENGTH or scheme.lower() not in ("bearer", "token"):
        return None
    return token_digest(value)


def cookie_values(request: web.BaseRequest, name: str) -> list[str]:
    """Every value sent for cookie ``name``: another host of the site may have added a
    second cookie of the same name, so the caller tries each rather than trusting one."""
    values: list[str] = []
    for header in request.headers.getall("Cookie", ()):
        if name not in header:
            continue
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name and value:
                values.append(_unquote(value))
    return values


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    try:
        parsed = SimpleCookie(f"x={value}")
    except CookieError:
        return value
    return parsed["x"].value if "x" in parsed else value


def is_websocket(request: web.BaseRequest) -> bool:
    return (request.method == "GET"
            and request.headers.get("Upgrade", "").lower() == "websocket")


def needs_same_origin(request: web.BaseRequest, websocket: bool) -> bool:
    return websocket or request.method not in SAFE_METHODS


def same_origin(request: web.BaseRequest, origins: Origins) -> bool:
    """True when the request's Origin is the origin it was sent to. A missing Origin fails:
    browsers send one with every WebSocket upgrade and every non-GET request."""
    origin = request.headers.get("Origin")
    return origin is not None and origin.lower() == origins.own_origin(request.host)


def is_service_worker_script(request: web.BaseRequest) -> bool:
    """Browsers fetch a service worker's script with ``Service-Worker: script``."""
    return request.headers.get("Service-Worker", "").lower() == "script"


def split_user_path(path: str) -> tuple[str, str, str] | None:
    """'/user/<owner>/<ws><tail>' -> (owner, ws, tail); tail is '', '/...' or '?...'."""
    rest = path[len("/user/"):]
    owner, slash, rest = rest.partition("/")
    if not slash or not owner:
        return None
    end = len(rest)
    for stop in ("/", "?"):
        index = rest.find(stop)
        if index != -1 and index < end:
            end = index
    name, tail = rest[:end], rest[end:]
    if not name:
        return None
    if "%" in owner or "%" in name:
        owner, name = unquote(owner), unquote(name)
    return owner, name, tail
