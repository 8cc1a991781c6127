"""TCP tunnels over WebSocket: ``/tunnel/<owner>/<workspace>/<port>`` on the public port.

What makes SSH (and any TCP service of a workspace: a database, a debugger) reachable from a
campus that lets only HTTPS out: ``labspace tunnel`` (ssh's ProxyCommand) and ``labspace
port-forward`` open this WebSocket, and the proxy carries its binary frames to and from a TCP
connection to that port of the workspace, and nowhere else (the workspace's own address, from
its route). Rules, stricter than for pages:

* a token only (``Authorization: Bearer``), never a cookie: no page of any origin can open a
  tunnel with a visitor's session;
* the workspace's owner only, not even an admin (an admin's token would otherwise be a shell
  in everyone's workspace without trace);
* the workspace running, the port an integer 1-65535, checked before the upgrade so a refusal
  is a plain HTTP error the client can show.

The connection is registered like any forwarded WebSocket: a revoked token or a disabled
user closes it with 1008 (connections.py), a proxy restart with 1001. Pings every 30 s keep
it open through idle periods and the proxies between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from labspace.proxy.connections import CLIENT_WEBSOCKET

log = logging.getLogger(__name__)

PREFIX = "/tunnel/"
CONNECT_TIMEOUT_S = 5.0
HEARTBEAT_S = 30.0
CHUNK = 64 * 1024
MAX_FRAME = 1024 * 1024  # what a client may send in one frame (its own chunks are 64 KiB)
# The one text frame: the client has no more to send (stdin ended), as TCP's half close;
# what the service still answers comes back. Everything else travels in binary frames.
EOF = "eof"


def parse_path(path: str) -> tuple[str, str, int] | None:
    """"/tunnel/ada/lab/22" -> ("ada", "lab", 22); None for anything else."""
    if not path.startswith(PREFIX) or "?" in path:
        return None
    parts = path[len(PREFIX):].split("/")
    if len(parts) != 3 or not all(parts) or not parts[2].isdigit() or len(parts[2]) > 5:
        return None
    port = int(parts[2])
    return (parts[0], parts[1], port) if 1 <= port <= 65535 else None


def target_host(target: str) -> str | None:
    """The workspace's address from its route target ("http://10.0.1.5:8888")."""
    return urlsplit(target).hostname


async def carry(request: web.Request, host: str, port: int,
                open_sockets: set[web.WebSocketResponse]) -> web.StreamResponse:
    """Connect to ``host:port``, then accept the WebSocket and pump both ways until either
    side ends."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        log.info("tunnel to %s:%d refused: %s", host, port, exc)
        return web.Response(status=502, text=f"nothing answers on port {port} in the "
                            "workspace (is the service running?)\n")
    client = web.WebSocketResponse(heartbeat=HEARTBEAT_S, compress=False,
                                   max_msg_size=MAX_FRAME, autoping=True)
    try:
        await client.prepare(request)
        request[CLIENT_WEBSOCKET] = client
        open_sockets.add(client)
        await _pump(client, reader, writer)
    finally:
        open_sockets.discard(client)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        if not client.closed:
            with contextlib.suppress(Exception):
                await client.close()
    return client


async def _pump(client: web.WebSocketResponse, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    async def to_workspace() -> None:
        async for message in client:
            if message.type == aiohttp.WSMsgType.BINARY:
                writer.write(message.data)
                await writer.drain()
            elif message.type == aiohttp.WSMsgType.TEXT and message.data == EOF:
                writer.write_eof()  # the client is done sending; replies may still come
            else:
                await client.close(code=1003, message=b"binary frames only")

    async def to_client() -> None:
        while chunk := await reader.read(CHUNK):
            await client.send_bytes(chunk)
        await client.close()  # the service closed the connection

    pumps = [asyncio.ensure_future(to_workspace()), asyncio.ensure_future(to_client())]
    try:
        # Either end going (the client's WebSocket, the service's connection) ends both.
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
