"""The client of the proxy's TCP tunnels (labspace/proxy/tunnel.py), for a laptop.

``stdio`` carries standard input and output (ssh's ProxyCommand); ``forward`` listens on
local ports and opens one tunnel per accepted connection (port-forward). Imports only
aiohttp: nothing of the server side, so ``pip install labspace`` on a laptop suffices.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

CHUNK = 64 * 1024
EOF = "eof"  # no more to send (proxy/tunnel.py's half close)
HEARTBEAT_S = 30.0


class TunnelRefused(Exception):
    """The proxy refused the tunnel; the message is its reason, for a person."""


@dataclass(frozen=True)
class Endpoint:
    """Where to open tunnels, as whom: the hub's public URL and the user's API token."""

    url: str
    token: str
    owner: str
    workspace: str

    def tunnel_url(self, port: int) -> str:
        parts = urlsplit(self.url)
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        path = f"/tunnel/{quote(self.owner, safe='')}/{quote(self.workspace, safe='')}/{port}"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


async def open_tunnel(session: aiohttp.ClientSession, endpoint: Endpoint,
                      port: int) -> aiohttp.ClientWebSocketResponse:
    try:
        return await session.ws_connect(
            endpoint.tunnel_url(port), headers={"Authorization": f"Bearer {endpoint.token}"},
            heartbeat=HEARTBEAT_S, compress=0, max_msg_size=0, autoping=True)
    except aiohttp.WSServerHandshakeError as exc:
        raise TunnelRefused(_refusal(exc.status, endpoint, port)) from exc
    except aiohttp.ClientError as exc:
        raise TunnelRefused(f"cannot reach {endpoint.url}: {exc}") from exc


def _refusal(status: int, endpoint: Endpoint, port: int) -> str:
    where = f"{endpoint.owner}/{endpoint.workspace}"
    return {
        401: "the token was refused: get a new one (labspace login) or check LABSPACE_TOKEN",
        403: f"{where} is not yours: only its owner opens a tunnel into it",
        404: f"no workspace {where}",
        409: f"{where} is not running: start it first",
        502: f"nothing answers on port {port} in {where}",
        503: f"{where} is not running: start it first",
    }.get(status, f"the proxy refused the tunnel (HTTP {status})")


async def pipe(ws: aiohttp.ClientWebSocketResponse, reader: asyncio.StreamReader,
               write: Callable[[bytes], object], drain: Callable[[], object]) -> None:
    """Carry ``reader`` into the tunnel and the tunnel into ``write`` until the far side
    ends; the reader's end is passed on as a half close."""

    async def outbound() -> None:
        while chunk := await reader.read(CHUNK):
            await ws.send_bytes(chunk)
        await ws.send_str(EOF)

    sending = asyncio.ensure_future(outbound())
    try:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                write(message.data)
                result = drain()
                if asyncio.iscoroutine(result):
                    await result
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending


async def stdio(endpoint: Endpoint, port: int) -> int:
    """Standard input and output through a tunnel (ssh -o ProxyCommand=...)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    async with aiohttp.ClientSession() as session:
        ws = await open_tunnel(session, endpoint, port)
        await pipe(ws, reader, out.write, out.flush)
        return 0 if ws.close_code in (None, 1000) else 1


async def forward(endpoint: Endpoint, ports: list[tuple[int, int]],
                  ready: Callable[[list[tuple[int, int]]], object] | None = None,
                  bind: str = "127.0.0.1") -> None:
    """Listen on each local port of ``ports`` ((local, remote); local 0 picks a free one)
    and carry every connection to the remote port; ``ready`` gets the bound pairs. Runs
    until cancelled."""
    async with aiohttp.ClientSession() as session:

        def handler(remote: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                             Awaitable[None]]:
            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                try:
                    ws = await open_tunnel(session, endpoint, remote)
                except TunnelRefused as exc:
                    print(f"labspace port-forward: {exc}", file=sys.stderr)
                    writer.close()
                    return
                try:
                    await pipe(ws, reader, writer.write, writer.drain)
                except ConnectionError:
                    pass
                finally:
                    await ws.close()
                    writer.close()
            return serve

        servers = [await asyncio.start_server(handler(remote), bind, local)
                   for local, remote in ports]
        bound = [(s.sockets[0].getsockname()[1], remote)
                 for s, (_, remote) in zip(servers, ports, strict=True)]
        if ready is not None:
            ready(bound)
        try:
            await asyncio.gather(*(s.serve_forever() for s in servers))
        finally:
            for server in servers:
                server.close()
