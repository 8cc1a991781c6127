"""HTTP forwarding: stream a request to an upstream and its answer back (WebSockets: websocket.py).

Nothing here buffers a whole body (except small responses that declare a Content-Length),
decompresses, or outlives the client: the server runs with handler cancellation, so a client
that leaves cancels the upstream request, whose connection is then closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from labspace.proxy.forwarded import CLIENT_CLAIMS, DIRECT, Forwarding
from labspace.proxy.upstream import (
    UpstreamFailed,
    UpstreamPool,
    UpstreamProtocol,
    close_client,
    decode_headers,
)

log = logging.getLogger(__name__)


# Hop-by-hop headers (RFC 9110 7.6.1) plus what a proxy must set itself.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
_REQUEST_DROP = _HOP_BY_HOP | {"expect"}
# ... and what a client claims about itself: the proxy says who the client is.
_REQUEST_DROP_CLAIMS = _REQUEST_DROP | CLIENT_CLAIMS
_WS_HANDSHAKE = frozenset({
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-protocol", "sec-websocket-accept",
})
# Never passed on from an upstream: a workspace must not widen a service worker's scope.
_RESPONSE_DROP = _HOP_BY_HOP | {"service-worker-allowed"}
# Cookies only labspace sets (the hub's session, a workspace host's login).
_OWN_COOKIE_PREFIXES = ("labspace-", "__host-labspace-", "__secure-labspace-")
# Responses at most this big that declare their length are read whole and sent in one write.
SMALL_BODY = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class UpstreamUnavailable(Exception):
    """The upstream could not be asked; nothing was sent to the client yet.

    ``connect_failed`` means no connection could be made at all (so the request body is
    untouched and the request may be retried elsewhere).
    """

    def __init__(self, message: str, *, connect_failed: bool) -> None:
        super().__init__(message)
        self.connect_failed = connect_failed


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


def _filter_workspace_cookies(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    if "Set-Cookie" not in headers:
        return headers
    kept: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        if key.lower() == "set-cookie" and not workspace_may_set(value):
            log.info("dropped a workspace's Set-Cookie for %r", value.split("=", 1)[0][:60])
            continue
        kept.add(key, value)
    return kept


def upstream_headers(
    request: web.BaseRequest,
    *,
    workspace: bool,
    secret: tuple[str, str] | None = None,
    websocket: bool = False,
    forwarding: Forwarding = DIRECT,
) -> CIMultiDict[str]:
    """The headers to send upstream.

    For a workspace (``workspace=True``) the labspace session cookie and the incoming
    Authorization header are removed; for the hub everything end-to-end passes unchanged.
    Either way ``secret`` (name, value) is set, and X-Forwarded-For/-Proto/-Host tell what
    ``forwarding`` makes of the client: what the client claimed about itself is dropped.
    """
    incoming = request.headers
    drop = _REQUEST_DROP_CLAIMS
    connection = incoming.get("Connection")
    if connection and connection.lower() not in ("keep-alive", "close", "upgrade"):
        drop = drop | {token.strip().lower() for token in connection.split(",")}
    if websocket:
        drop = drop | _WS_HANDSHAKE
    headers: CIMultiDict[str] = CIMultiDict()
    for key, value in incoming.items():
        lower = key.lower()
        if lower in drop:
            continue
        if workspace:
            if lower == "authorization":
                continue
            if lower == "cookie":
                value = strip_cookie(value)
                if not value:
                    continue
        headers.add(key, value)
    address, scheme = forwarding.client(request)
    headers["X-Forwarded-For"] = address
    headers["X-Forwarded-Proto"] = scheme
    if request.host:
        headers["X-Forwarded-Host"] = request.host
    if secret is not None:
        headers[secret[0]] = secret[1]
    return headers


_REQUEST_DROP_B = frozenset(name.encode() for name in _REQUEST_DROP_CLAIMS)
_RESPONSE_DROP_B = frozenset(name.encode() for name in _RESPONSE_DROP)
_SESSION_COOKIE_B = b"labspace-"  # in every labspace cookie's name
_KEEP_TOKENS = (b"keep-alive", b"close", b"upgrade")


def upstream_head(
    request: web.BaseRequest,
    path_qs: str,
    host: bytes,
    *,
    workspace: bool,
    secret: tuple[bytes, bytes] | None = None,
    forwarding: Forwarding = DIRECT,
) -> bytes:
    """The request head for the upstream, in bytes: what ``upstream_headers`` sends.

    For requests without a body and not WebSocket upgrades (the fast path).
    """
    drop = _REQUEST_DROP_B
    lines = [request.method.encode(), b" ", path_qs.encode("utf-8", "surrogateescape"),
             b" HTTP/1.1\r\n"]
    has_host = False
    secret_name = secret[0].lower() if secret is not None else b""
    raw = request.raw_headers
    for name, value in raw:
        if name.lower() == b"connection" and value.lower() not in _KEEP_TOKENS:
            drop = drop | {token.strip().lower() for token in value.split(b",")}
    for name, value in raw:
        lower = name.lower()
        if lower in drop or lower == secret_name:
            continue
        if workspace:
            if lower == b"authorization":
                continue
            if lower == b"cookie" and _SESSION_COOKIE_B in value:
                value = strip_cookie(value.decode("utf-8", "surrogateescape")).encode(
                    "utf-8", "surrogateescape")
                if not value:
                    continue
        if lower == b"host":
            has_host = True
        lines += (name, b": ", value, b"\r\n")
    if not has_host:
        lines += (b"Host: ", host, b"\r\n")
    address, scheme = forwarding.client(request)
    lines += (b"X-Forwarded-For: ", address.encode(), b"\r\nX-Forwarded-Proto: ",
              scheme.encode(), b"\r\n")
    if request.host:
        lines += (b"X-Forwarded-Host: ", request.host.encode("utf-8", "surrogateescape"),
                  b"\r\n")
    if secret is not None:
        lines += (secret[0], b": ", secret[1], b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


_targets: dict[str, tuple[str, int, bytes] | None] = {}


def fast_target(base: str) -> tuple[str, int, bytes] | None:
    """(host, port, Host header) for a plain-HTTP base URL; None when the fast path can't."""
    try:
        return _targets[base]
    except KeyError:
        pass
    try:
        parts = urlsplit(base)
        port = parts.port or 80
        ok = parts.scheme == "http" and parts.hostname and not parts.path.strip("/")
    except ValueError:
        ok = False
    target = (parts.hostname or "", port, parts.netloc.encode()) if ok else None
    if len(_targets) > 10_000:
        _targets.clear()
    _targets[base] = target
    return target


def can_go_fast(request: web.BaseRequest) -> bool:
    """No body, not HEAD (httptools can't be told a response has no body)."""
    return request.method != "HEAD" and not request.body_exists


async def forward_fast(
    request: web.BaseRequest,
    pool: UpstreamPool,
    target: tuple[str, int, bytes],
    head: bytes,
    read_timeout: float,
    *,
    workspace: bool = False,
) -> web.StreamResponse:
    """``forward_http`` for requests without a body, over the raw keep-alive pool."""
    host, port, _ = target
    for attempt in (1, 2):
        try:
            conn, reused = await pool.acquire(host, port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamUnavailable(str(exc) or type(exc).__name__,
                                      connect_failed=True) from exc
        try:
            conn.send(head)
            await conn.head(read_timeout)
        except UpstreamFailed as exc:
            conn.close()
            # A pooled connection the upstream had just closed: nothing was consumed, retry.
            if reused and not exc.answered and attempt == 1:
                continue
            raise UpstreamUnavailable(str(exc), connect_failed=False) from exc
        except TimeoutError as exc:
            conn.close()
            raise UpstreamUnavailable("upstream read timed out", connect_failed=False) from exc
        except BaseException:
            conn.close()
            raise
        return await _relay(request, pool, conn, target, read_timeout, workspace)
    raise AssertionError("not reached")


async def _relay(request: web.BaseRequest, pool: UpstreamPool, conn: UpstreamProtocol,
                 target: tuple[str, int, bytes], read_timeout: float,
                 workspace: bool) -> web.StreamResponse:
    response: web.StreamResponse | None = None
    try:
        headers_out = decode_headers(conn.headers, _response_drop(conn.headers))
        if workspace:
            headers_out = _filter_workspace_cookies(headers_out)
        reason = conn.reason.decode("utf-8", "surrogateescape") or None
        length = headers_out.get("Content-Length")
        if (length is not None and length.isdigit() and int(length) <= SMALL_BODY
                and conn.status not in _NO_BODY_STATUS):
            try:
                while not conn.complete:
                    await conn.wait(read_timeout)
            except (UpstreamFailed, TimeoutError) as exc:
                raise UpstreamUnavailable(str(exc) or type(exc).__name__,
                                          connect_failed=False) from exc
            body = conn.take()
            return web.Response(status=conn.status, reason=reason, headers=headers_out,
                                body=body)
        response = web.StreamResponse(status=conn.status, reason=reason, headers=headers_out)
        await response.prepare(request)
        try:
            while True:
                data = conn.take()
                if data:
                    await response.write(data)
                    continue
                if conn.complete:
                    break
                await conn.wait(read_timeout)
        except (UpstreamFailed, TimeoutError) as exc:
            log.info("upstream %s:%s failed mid-response: %r", target[0], target[1], exc)
            close_client(request)
            return response
        await response.write_eof()
        return response
    except ConnectionResetError:  # the client left while we answered
        conn.close()
        return response or web.Response(status=499)
    except BaseException:
        conn.close()  # never return a half-read connection to the pool
        raise
    finally:
        pool.release(conn, target[0], target[1])


def _response_drop(raw: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    for name, value in raw:
        if name.lower() == b"connection":
            lower = value.lower()
            if lower not in (b"keep-alive", b"close"):
                return _RESPONSE_DROP_B | {token.strip().lower()
                                           for token in lower.split(b",")}
    return _RESPONSE_DROP_B


def _response_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
    raw = upstream.headers
    connection = raw.get("Connection")
    drop = _RESPONSE_DROP
    if connection and connection.lower() not in ("keep-alive", "close"):
        drop = drop | {token.strip().lower() for token in connection.split(",")}
    headers: CIMultiDict[str] = CIMultiDict()
    for key, value in raw.items():
        if key.lower() not in drop:
            headers.add(key, value)
    return headers


def upstream_url(base: str, path_qs: str) -> URL:
    return URL(base + path_qs, encoded=True)


async def forward_http(
    request: web.Request,
    session: aiohttp.ClientSession,
    base: str,
    path_qs: str,
    headers: CIMultiDict[str],
    *,
    workspace: bool = False,
    request_body: AsyncIterable[bytes] | None = None,
) -> web.StreamResponse:
    """Send the request to ``base + path_qs`` and stream the answer back.

    Raises UpstreamUnavailable when the upstream could not be reached or failed before
    answering; after the answer has begun, failures just end the client's connection.
    ``request_body``, when given, is sent instead of the request's own body (e.g. capped).
    """
    upstream = await _send(request, session, upstream_url(base, path_qs), headers,
                           request_body)
    response: web.StreamResponse | None = None
    try:
        headers_out = _response_headers(upstream)
        if workspace:
            headers_out = _filter_workspace_cookies(headers_out)
        length = upstream.content_length
        if (length is not None and length <= SMALL_BODY and request.method != "HEAD"
                and upstream.status not in _NO_BODY_STATUS):
            # Small and of known length: one write carries the status, headers and body.
            try:
                body = await upstream.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamUnavailable(str(exc) or type(exc).__name__,
                                          connect_failed=False) from exc
            return web.Response(status=upstream.status, reason=upstream.reason,
                                headers=headers_out, body=body)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                      headers=headers_out)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The upstream failed mid-answer: end the client's connection so it sees a
            # truncated response instead of a complete-looking one.
            log.info("upstream %s failed mid-response: %r", base, exc)
            close_client(request)
            return response
        await response.write_eof()
        return response
    except ConnectionResetError:  # the client left while we answered
        upstream.close()
        return response or web.Response(status=499)
    except BaseException:
        upstream.close()  # never return a half-read connection to the pool
        raise
    finally:
        upstream.release()


async def _send(
    request: web.Request, session: aiohttp.ClientSession, url: URL, headers: CIMultiDict[str],
    body: AsyncIterable[bytes] | None = None,
) -> aiohttp.ClientResponse:
    """``body``: the request's body as it should be sent (default: as it comes)."""
    has_body = request.body_exists
    retried = False
    while True:
        try:
            return await session.request(
                request.method, url, headers=headers,
                data=(request.content if body is None else body) if has_body else None,
                allow_redirects=False,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise UpstreamUnavailable(str(exc), connect_failed=True) from exc
        except aiohttp.ServerDisconnectedError as exc:
            # A pooled keep-alive connection the upstream had just closed: retry once when
            # the request has no body (nothing was consumed).
            if not retried and not has_body:
                retried = True
                continue
            raise UpstreamUnavailable(str(exc), connect_failed=False) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable(str(exc) or type(exc).__name__,
                                      connect_failed=False) from exc
