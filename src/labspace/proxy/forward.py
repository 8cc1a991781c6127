"""HTTP forwarding: stream a request to an upstream and its answer back (WebSockets: websocket.py).

Two paths, held to the same tests (tests/proxy/test_forwarding.py): requests without a body
(not HEAD) go over the raw keep-alive pool of upstream.py (``forward_fast``), the rest through
aiohttp's client (``forward_http``); both take their header rules from headers.py. The fast
path stays because it is measurably cheaper (docs/performance.md, "Fast path or one path").

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

from labspace.proxy.headers import response_headers
from labspace.proxy.upstream import UpstreamFailed, UpstreamPool, UpstreamProtocol, close_client

log = logging.getLogger(__name__)


# Responses at most this big that declare their length are read whole and sent in one write.
SMALL_BODY = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})
# Requests sent again, once, when a reused upstream connection closed without answering
# (RFC 9112 9.3.1 allows it for idempotent methods only). Only the safe ones: a DELETE or PUT
# the upstream did carry out before hanging up would answer 404/409 the second time, for a
# change that succeeded; the client is better placed to decide.
RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class UpstreamUnavailable(Exception):
    """The upstream could not be asked; nothing was sent to the client yet.

    ``connect_failed`` means no connection could be made at all (so the request body is
    untouched and the request may be retried elsewhere).
    """

    def __init__(self, message: str, *, connect_failed: bool) -> None:
        super().__init__(message)
        self.connect_failed = connect_failed


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
            # A pooled connection the upstream had just closed: nothing was consumed, so a
            # safe request may go again (the upstream may still have acted on it).
            if (reused and not exc.answered and attempt == 1
                    and request.method in RETRY_METHODS):
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
        headers_out = response_headers(conn.headers, workspace=workspace)
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


def client_session(connect_timeout: float, sock_read_timeout: float) -> aiohttp.ClientSession:
    """The pooled client session forward_http and WebSockets use, one for the process' life:
    no total timeout (downloads, long polls), no decompression, no cookie jar."""
    connector = aiohttp.TCPConnector(
        limit=10_000, limit_per_host=0, keepalive_timeout=30.0, ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=sock_read_timeout,
        ),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # never mix one user's cookies into another's
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        max_line_size=64 * 1024, max_field_size=64 * 1024,
        trust_env=False,
    )


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
        headers_out = response_headers(upstream.raw_headers, workspace=workspace)
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
            # A pooled keep-alive connection the upstream had just closed: retry a safe
            # request once when it has no body (nothing was consumed).
            if not retried and not has_body and request.method in RETRY_METHODS:
                retried = True
                continue
            raise UpstreamUnavailable(str(exc), connect_failed=False) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable(str(exc) or type(exc).__name__,
                                      connect_failed=False) from exc
