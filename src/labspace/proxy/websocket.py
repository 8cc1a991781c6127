"""WebSocket forwarding: open the upstream socket, then pump messages both ways until either
side closes (no size cap: Jupyter sends large messages; close codes are passed on)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from labspace.proxy.activity import FrameStamp
from labspace.proxy.connections import CLIENT_WEBSOCKET
from labspace.proxy.forward import UpstreamUnavailable, upstream_url

log = logging.getLogger(__name__)


def _close_code(code: object) -> int:
    """A close code that may be sent on (1005/1006/1015 may only be observed)."""
    if isinstance(code, int) and (1000 <= code <= 1003 or 1007 <= code <= 1014
                                  or 3000 <= code <= 4999):
        return code
    return 1000


_AnyWS = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _pump(source: _AnyWS, sink: _AnyWS, activity: FrameStamp | None = None) -> None:
    """Copy messages from ``source`` to ``sink`` until ``source`` closes; then close ``sink``.
    Each data frame stamps ``activity`` (proxy/activity.py): one float into a dict."""
    stamps, key = activity if activity is not None else (None, "")
    clock = time.time
    try:
        while True:
            msg = await source.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                if stamps is not None:
                    stamps[key] = clock()
                await sink.send_str(msg.data)
            elif kind is WSMsgType.BINARY:
                if stamps is not None:
                    stamps[key] = clock()
                await sink.send_bytes(msg.data)
            elif kind is WSMsgType.PING:
                await sink.ping(msg.data)
            elif kind is WSMsgType.PONG:
                await sink.pong(msg.data)
            elif kind is WSMsgType.CLOSE:
                # Pass the close on first (the app hears the client's code), then answer it.
                code = _close_code(msg.data)
                reason = (msg.extra or "").encode()[:120]
                await sink.close(code=code, message=reason)
                await source.close(code=code, message=reason)
                return
            else:  # CLOSING, CLOSED, ERROR
                if not source.closed:  # it went away without a close frame
                    await sink.close(code=1011 if kind is WSMsgType.ERROR else 1001)
                # else: the other pump is closing both ends
                return
    except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
        log.debug("websocket pump ended: %r", exc)
        with contextlib.suppress(Exception):
            await sink.close(code=1011)
        with contextlib.suppress(Exception):
            await source.close(code=1011)


def _protocols(request: web.BaseRequest) -> list[str]:
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    return [item.strip() for item in offered.split(",") if item.strip()]


async def forward_websocket(
    request: web.Request,
    session: aiohttp.ClientSession,
    base: str,
    path_qs: str,
    headers: CIMultiDict[str],
    open_sockets: set[web.WebSocketResponse] | None = None,
    activity: FrameStamp | None = None,
) -> web.StreamResponse:
    """Open a WebSocket to the upstream, accept the client's, and pump both ways; data frames
    either way stamp ``activity`` (ActivityTracker.frames)."""
    try:
        upstream = await session.ws_connect(
            upstream_url(base, path_qs), headers=headers, protocols=_protocols(request),
            autoclose=False, autoping=False, heartbeat=None, compress=0, max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
        )
    except aiohttp.WSServerHandshakeError as exc:
        # The upstream answered but refused the upgrade: pass its status on.
        return web.Response(status=exc.status or 502, text=exc.message or "")
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise UpstreamUnavailable(str(exc), connect_failed=True) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamUnavailable(str(exc) or type(exc).__name__, connect_failed=False) from exc
    client = web.WebSocketResponse(
        protocols=(upstream.protocol,) if upstream.protocol else (),
        autoclose=False, autoping=False, heartbeat=None, compress=False, max_msg_size=0,
    )
    try:
        await client.prepare(request)
        request[CLIENT_WEBSOCKET] = client  # so a revocation can close it with a reason
        if open_sockets is not None:
            open_sockets.add(client)
        await _pump_both(client, upstream, activity)
    finally:
        if open_sockets is not None:
            open_sockets.discard(client)
        if not upstream.closed:
            with contextlib.suppress(Exception):
                await asyncio.shield(upstream.close(code=1001))
    return client


async def _pump_both(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse,
                     activity: FrameStamp | None = None) -> None:
    tasks = [asyncio.ensure_future(_pump(client, upstream, activity)),
             asyncio.ensure_future(_pump(upstream, client, activity))]
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # The first pump closed both ends; give the other a moment to see its close.
        if pending:
            await asyncio.wait(pending, timeout=10.0)
    finally:
        _cancel(tasks)


def _cancel(tasks: Iterable[asyncio.Future[None]]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
