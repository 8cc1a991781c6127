"""Who the client is, on the hub: its address and scheme, from the proxy and no one else.

The hub listens on loopback behind the proxy, so every peer it sees is the proxy (or another
local process). The proxy replaces whatever X-Forwarded-For/-Proto a client sent with what it
saw itself, and proves it forwarded the request with ``PROXY_HEADER`` (see labspace.hubedge).
Only with that proof does this middleware set the ASGI scope's ``client`` and ``scheme`` from
those headers (the login throttle counts per address; the Origin check and redirects need the
public scheme). Without it the peer's own address and scheme stay: a local process or a
request that found the hub's port otherwise cannot pick the address it is counted under.

Uvicorn's own proxy_headers is off: it trusts any header from a trusted peer address, and the
proxy's address is everyone's on this machine.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from labspace.hubedge import PROXY_HEADER

_PROOF = PROXY_HEADER.lower().encode()
# Set in the scope of a request that carries the proxy's proof (limits.py reads it).
VIA_PROXY = "labspace.via_proxy"
_SECURE = {"http": "https", "websocket": "wss"}
_PLAIN = {"http": "http", "websocket": "ws"}


class TrustedForwarding:
    """Pure ASGI: believe X-Forwarded-For/-Proto only when the proxy's proof comes with them.

    ``proof`` computes it on the first request, not when the app is built: the key behind it
    lives in the data directory, which the hub's start-up first makes private.
    """

    def __init__(self, app: ASGIApp, proof: Callable[[], str]) -> None:
        self.app = app
        self._make_proof = proof
        self._proof: bytes | None = None

    @property
    def proof(self) -> bytes:
        if self._proof is None:
            self._proof = self._make_proof().encode()
        return self._proof

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self._resolve(scope)
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> Scope:
        sent = forwarded_for = forwarded_proto = None
        kept: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name == _PROOF:
                sent = value
                continue  # never passed on: error pages, logs and the app need not see it
            if name == b"x-forwarded-for":
                forwarded_for = value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
            kept.append((name, value))
        if sent is None:
            return scope
        scope = {**scope, "headers": kept}
        if not hmac.compare_digest(sent, self.proof):
            return scope
        scope[VIA_PROXY] = True
        address = _address(forwarded_for)
        if address is not None:
            scope["client"] = (address, 0)
        if forwarded_proto is not None:
            schemes = _SECURE if forwarded_proto.strip().lower() == b"https" else _PLAIN
            scope["scheme"] = schemes[scope["type"]]
        return scope


def _address(header: bytes | None) -> str | None:
    """The address the proxy put there (it sends exactly one), if it is one."""
    if not header:
        return None
    try:
        return str(ipaddress.ip_address(header.decode("latin-1").rsplit(",", 1)[-1].strip()))
    except ValueError:
        return None
