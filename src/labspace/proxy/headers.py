"""What the proxy passes on, both ways: the header rules of every forwarding path.

Requests (to the hub or a workspace) lose hop-by-hop headers (RFC 9110 7.6.1) and those
their Connection header names, ``Expect`` (the proxy answers no 100-continue itself), what
the client claims about itself (X-Forwarded-*: the proxy sets its own from ``Forwarding``)
and, for a workspace, the caller's ``Authorization`` and labspace's own cookies; then the
route's secret (or the hub's proof) is added. Responses lose hop-by-hop headers,
``Service-Worker-Allowed`` and, from a workspace, any ``Set-Cookie`` for labspace's cookies or
for other hosts.

The rules work on the raw (bytes) fields: the fast path writes them as they are, the aiohttp
path decodes them (``upstream_headers``) the way aiohttp decodes what it receives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp import web
from multidict import CIMultiDict

from labspace.proxy.fields import valid_field_value, valid_secret_name
from labspace.proxy.forwarded import CLIENT_CLAIMS, DIRECT, Forwarding

log = logging.getLogger(__name__)

Field = tuple[bytes, bytes]

# Hop-by-hop headers (RFC 9110 7.6.1) plus what a proxy must set itself.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
# ... and what a client claims about itself: the proxy says who the client is.
REQUEST_DROP = HOP_BY_HOP | {"expect"} | CLIENT_CLAIMS
WS_HANDSHAKE = frozenset({
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-protocol", "sec-websocket-accept",
})
# Never passed on from an upstream: a workspace must not widen a service worker's scope.
RESPONSE_DROP = HOP_BY_HOP | {"service-worker-allowed"}
# Cookies only labspace sets (the hub's session, a workspace host's login).
_OWN_COOKIE_PREFIXES = ("labspace-", "__host-labspace-", "__secure-labspace-")

_REQUEST_DROP_B = frozenset(name.encode() for name in REQUEST_DROP)
_REQUEST_DROP_WS_B = _REQUEST_DROP_B | {name.encode() for name in WS_HANDSHAKE}
_RESPONSE_DROP_B = frozenset(name.encode() for name in RESPONSE_DROP)
_OWN_COOKIE_B = b"labspace-"  # in every labspace cookie's name
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade"})



class InvalidHeader(ValueError):
    """A header the proxy was told to send is not one HTTP allows (or one it sets itself)."""


_secrets: dict[tuple[str, str], Field] = {}


def secret_field(name: str, value: str) -> Field:
    """The (name, value) a route's secret is sent as; InvalidHeader when it may not be (a
    CR/LF in a value would let a template write headers, or requests, of its own)."""
    found = _secrets.get((name, value))
    if found is not None:
        return found
    if not valid_secret_name(name):
        raise InvalidHeader(f"not a header name a secret may use: {name!r}")
    if not valid_field_value(value):
        raise InvalidHeader(f"the value for {name} has control characters (CR, LF...)")
    if len(_secrets) > 10_000:
        _secrets.clear()
    found = _secrets[(name, value)] = (name.encode(), value.encode())
    return found


# ------------------------------------------------------------------ cookies


def _own_cookie(name: str) -> bool:
    return name.strip().lower().startswith(_OWN_COOKIE_PREFIXES)


def strip_cookie(value: str) -> str:
    """The Cookie header ``value`` without labspace's own cookies (a workspace must never see
    its visitor's credentials); the app's cookies untouched."""
    if "labspace-" not in value:
        return value
    kept = [
        part.strip() for part in value.split(";")
        if part.strip() and not _own_cookie(part.split("=", 1)[0])
    ]
    return "; ".join(kept)


def workspace_may_set(set_cookie: str) -> bool:
    """Whether a workspace's ``Set-Cookie`` passes: never one of labspace's own cookies, and
    never one for other hosts (a Domain attribute would reach the hub or other workspaces)."""
    name = set_cookie.split("=", 1)[0]
    if _own_cookie(name):
        return False
    attributes = set_cookie.split(";")[1:]
    return not any(attr.split("=", 1)[0].strip().lower() == "domain" for attr in attributes)


# ------------------------------------------------------------------ requests


def _nominated(fields: Iterable[Field], drop: frozenset[bytes]) -> frozenset[bytes]:
    """``drop`` plus the headers a Connection header names (they are hop-by-hop too)."""
    for name, value in fields:
        if name.lower() == b"connection" and value.lower() not in _PLAIN_CONNECTION:
            drop = drop | {token.strip().lower() for token in value.split(b",")}
    return drop


def request_fields(
    request: web.BaseRequest,
    *,
    workspace: bool,
    secret: Field | None,
    host: bytes | None = None,
    websocket: bool = False,
    forwarding: Forwarding = DIRECT,
) -> list[Field]:
    """The header fields to send upstream, in order.

    ``host``: the Host to send when the client sent none (HTTP/1.0); None leaves it to the
    HTTP client. ``secret`` replaces any header of its name that the client sent.
    """
    raw = request.raw_headers
    drop = _nominated(raw, _REQUEST_DROP_WS_B if websocket else _REQUEST_DROP_B)
    secret_name = secret[0].lower() if secret is not None else b""
    fields: list[Field] = []
    has_host = False
    for name, value in raw:
        lower = name.lower()
        if lower in drop or lower == secret_name:
            continue
        if workspace:
            if lower == b"authorization":
                continue
            if lower == b"cookie" and _OWN_COOKIE_B in value:
                value = strip_cookie(value.decode("utf-8", "surrogateescape")).encode(
                    "utf-8", "surrogateescape")
                if not value:
                    continue
        if lower == b"host":
            has_host = True
        fields.append((name, value))
    if not has_host and host is not None:
        fields.append((b"Host", host))
    address, scheme = forwarding.client(request)
    fields += ((b"X-Forwarded-For", address.encode()), (b"X-Forwarded-Proto", scheme.encode()))
    if request.host:
        fields.append((b"X-Forwarded-Host", request.host.encode("utf-8", "surrogateescape")))
    if secret is not None:
        fields.append(secret)
    return fields


def upstream_head(request: web.BaseRequest, path_qs: str, host: bytes, *, workspace: bool,
                  secret: Field | None = None, forwarding: Forwarding = DIRECT) -> bytes:
    """The whole request head for the upstream, for requests without a body (the fast path)."""
    lines = [request.method.encode(), b" ", path_qs.encode("utf-8", "surrogateescape"),
             b" HTTP/1.1\r\n"]
    for name, value in request_fields(request, workspace=workspace, secret=secret, host=host,
                                      forwarding=forwarding):
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def upstream_headers(request: web.BaseRequest, *, workspace: bool, secret: Field | None = None,
                     websocket: bool = False,
                     forwarding: Forwarding = DIRECT) -> CIMultiDict[str]:
    """``request_fields`` for aiohttp's client (bodies, HEAD, WebSockets)."""
    return decode(request_fields(request, workspace=workspace, secret=secret,
                                 websocket=websocket, forwarding=forwarding))


# ------------------------------------------------------------------ responses


def response_headers(raw: Iterable[Field], *, workspace: bool) -> CIMultiDict[str]:
    """An upstream's response header fields as the client gets them."""
    raw = list(raw)
    headers = decode(raw, _nominated(raw, _RESPONSE_DROP_B))
    if workspace and "Set-Cookie" in headers:
        kept: CIMultiDict[str] = CIMultiDict()
        for key, value in headers.items():
            if key.lower() == "set-cookie" and not workspace_may_set(value):
                log.info("dropped a workspace's Set-Cookie for %r", value.split("=", 1)[0][:60])
                continue
            kept.add(key, value)
        headers = kept
    return headers


def decode(fields: Iterable[Field], drop: frozenset[bytes] = frozenset()) -> CIMultiDict[str]:
    """Fields minus ``drop`` (lower-case names), decoded as aiohttp decodes them."""
    return CIMultiDict([
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in fields if name.lower() not in drop
    ])
