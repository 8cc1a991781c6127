"""TCP tunnels over WebSocket (/tunnel/<owner>/<ws>/<port>), through the real proxy and the
real client (labspace.remote.tunnel), into services on loopback that stand for a workspace's
ports: an echo server that answers once the sender is done, and an HTTP app.

Written as the attacker too: no token, a cookie, another user's token, an admin's token, a
stopped workspace, a closed port, malformed paths, a text frame; a revoked token cuts an
open tunnel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from labspace.config import load_settings
from labspace.identity.credentials import digest
from labspace.proxy.app import PROXY_KEY, create_app, start_proxy
from labspace.proxy.source import Principal, Route
from labspace.proxy.tunnel import MAX_FRAME
from labspace.remote.tunnel import Endpoint, TunnelRefused, forward, open_tunnel
from tests.proxy.conftest import (
    APPS_DOMAIN,
    SECRET,
    Recorder,
    Stack,
    StaticRouteSource,
    free_port,
    serve,
    upstream_app,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Tunnels:
    url: str
    proxy: web.Application
    echo_port: int  # replies with all it got, after the sender's end (a half close)
    http_port: int


async def _echo_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read()  # until the client's half close arrives as EOF
    writer.write(hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
    await writer.drain()
    writer.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tunnels(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Tunnels]:
    echo = await asyncio.start_server(_echo_after_eof, "127.0.0.1", 0)
    http_runner, http_port = await serve(upstream_app(Recorder()))
    target = "http://127.0.0.1:1"  # the workspace's address; the tunnel picks the port
    source = StaticRouteSource(
        routes={("alice", "lab"): Route("alice", "lab", "running", target),
                ("alice", "off"): Route("alice", "off", "stopped", None),
                ("bob", "lab"): Route("bob", "lab", "running", target)},
        principals={"alice-token": Principal("alice", False),
                    "alice-session": Principal("alice", False),
                    "bob-token": Principal("bob", False),
                    "root-token": Principal("root", True)})
    settings = load_settings(data_dir=tmp_path_factory.mktemp("tunnel"), hub_port=1)
    app = create_app(settings, source)
    runner = await start_proxy(app, "127.0.0.1", 0)
    yield Tunnels(f"http://127.0.0.1:{runner.addresses[0][1]}", app,
                  echo.sockets[0].getsockname()[1], http_port)
    await runner.cleanup()
    await http_runner.cleanup()
    echo.close()


def alice(t: Tunnels, workspace: str = "lab", token: str = "alice-token") -> Endpoint:
    return Endpoint(t.url, token, "alice", workspace)


@contextlib.asynccontextmanager
async def forwarding(endpoint: Endpoint, remote: int) -> AsyncIterator[int]:
    """``labspace port-forward``'s loop on a free local port; yields that port."""
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(forward(endpoint, [(0, remote)],
                                         lambda pairs: bound.set_result(pairs[0][0])))
    try:
        yield await asyncio.wait_for(bound, 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_raw_tcp_goes_both_ways_with_the_senders_end_passed_on(tunnels: Tunnels) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)  # frames of 64 KiB, and a ragged end
    async with forwarding(alice(tunnels), tunnels.echo_port) as local:
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        writer.write(payload)
        await writer.drain()
        writer.write_eof()  # the echo answers only after this reaches it
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    digest_line, _, echoed = answer.partition(b"\n")
    assert digest_line.decode() == hashlib.sha256(payload).hexdigest()
    assert echoed == payload


async def test_port_forward_carries_a_real_http_exchange(tunnels: Tunnels) -> None:
    # The app checks the proxy's secret; port-forward is plain TCP, so the caller sends it.
    async with forwarding(alice(tunnels), tunnels.http_port) as local, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{local}",
                              headers={"Authorization": SECRET}) as http:
        for i in range(3):  # keep-alive: several requests on one tunnel
            answer = await http.get(f"/user/alice/lab/json?n={i}")
            assert answer.status_code == 200
            assert answer.json() == {"ok": True, "raw_path": f"/user/alice/lab/json?n={i}"}


@pytest.mark.parametrize(("token", "workspace", "port", "status"), [
    ("bob-token", "lab", "echo", 403),      # another user's token, into alice's workspace
    ("root-token", "lab", "echo", 403),     # not even an admin's
    ("no-such-token", "lab", "echo", 401),
    ("alice-token", "off", "echo", 503),    # stopped
    ("alice-token", "nope", "echo", 404),
    ("alice-token", "lab", "closed", 502),  # nothing listens there
])
async def test_only_the_owner_opens_a_tunnel_into_a_running_workspace(
        tunnels: Tunnels, token: str, workspace: str, port: str, status: int) -> None:
    number = tunnels.echo_port if port == "echo" else free_port()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TunnelRefused) as refused:
            await open_tunnel(session, alice(tunnels, workspace, token), number)
        async with session.get(alice(tunnels, workspace).tunnel_url(number).replace(
                "ws://", "http://"), headers={
                    "Authorization": f"Bearer {token}", "Connection": "Upgrade",
                    "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as answer:
            assert answer.status == status
    assert str(refused.value)  # a sentence for the person, per status


async def test_a_cookie_never_opens_a_tunnel_and_paths_are_strict(tunnels: Tunnels) -> None:
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        port = tunnels.echo_port
        async with session.get(f"{tunnels.url}/tunnel/alice/lab/{port}", headers={
                **upgrade, "Cookie": "labspace-session=alice-session",
                "Origin": tunnels.url}) as answer:
            assert answer.status == 401  # a page's WebSocket carries cookies, never a token
        auth = {**upgrade, "Authorization": "Bearer alice-token"}
        for path in ("/tunnel/alice/lab/0", "/tunnel/alice/lab/65536", "/tunnel/alice/lab/x",
                     f"/tunnel/alice/lab/{port}/more", f"/tunnel/alice/lab/{port}?to=10.0.0.1",
                     f"/tunnel/alice//{port}", "/tunnel/alice/lab/0000022"):
            async with session.get(tunnels.url + path, headers=auth) as answer:
                assert answer.status == 404, path
        async with session.get(f"{tunnels.url}/tunnel/alice/lab/{port}",
                               headers={"Authorization": "Bearer alice-token"}) as answer:
            assert answer.status == 400  # not a WebSocket


async def test_a_revoked_token_cuts_an_open_tunnel_and_text_frames_are_refused(
        tunnels: Tunnels) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await open_tunnel(session, alice(tunnels), tunnels.echo_port)
        await ws.send_bytes(b"still open")
        began = time.monotonic()
        assert tunnels.proxy[PROXY_KEY].revoke([digest("alice-token")], []) == 1
        message = await ws.receive(timeout=2)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1008 and time.monotonic() - began < 1.0

        ws = await open_tunnel(session, alice(tunnels), tunnels.echo_port)
        await ws.send_str("not bytes")
        message = await ws.receive(timeout=2)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1003


async def test_the_tunnel_closes_when_the_service_ends_it(tunnels: Tunnels) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await open_tunnel(session, alice(tunnels), tunnels.echo_port)
        await ws.send_bytes(b"hello")
        await ws.send_str("eof")  # the echo answers, then closes its end
        got = b""
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                got += message.data
        assert got.endswith(b"\nhello") and ws.close_code == 1000



async def test_a_frame_over_the_limit_closes_the_tunnel(tunnels: Tunnels) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await open_tunnel(session, alice(tunnels), tunnels.echo_port)
        await ws.send_bytes(b"x" * (MAX_FRAME + 1))  # the client's own frames are 64 KiB
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009  # message too big


async def test_a_workspace_host_serves_no_tunnel(apps_proxied: Stack) -> None:
    """A page on a sibling host (another workspace's, under apps_domain) cannot be a way in:
    tunnels live on the hub's own host only."""
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
               "Authorization": "Bearer alice-token"}
    path = f"{apps_proxied.url}/tunnel/alice/lab/{free_port()}"
    async with aiohttp.ClientSession() as session:
        for host in (f"lab--alice.{APPS_DOMAIN}", f"lab--bob.{APPS_DOMAIN}"):
            async with session.get(path, headers={**upgrade, "Host": host}) as answer:
                assert answer.status == 404, host
        async with session.get(path, headers=upgrade) as answer:  # the hub's own host
            assert answer.status == 502  # reached the tunnel: nothing listens on that port
