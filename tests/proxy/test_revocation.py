"""A revoked credential or a disabled user loses its open connections within a second.

Before: the proxy trusted its credential cache for 10 s and never closed open WebSockets
(a disabled user kept a terminal into another user's workspace for as long as she liked).
The hub's real notifier (labspace.identity.revocation) talks to the proxy's control socket.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from labspace.config import load_settings
from labspace.identity.credentials import digest
from labspace.identity.revocation import ProxyNotifier
from labspace.proxy.app import PROXY_KEY, create_app, start_proxy
from labspace.proxy.control import start_control
from labspace.proxy.source import Principal, Route
from tests.proxy.conftest import SECRET, Recorder, StaticRouteSource, serve, upstream_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def revocable(tmp_path: Path) -> AsyncIterator[tuple[str, StaticRouteSource, Path]]:
    up_runner, up_port = await serve(upstream_app(Recorder()))
    running = {"state": "running", "target": f"http://127.0.0.1:{up_port}",
               "secret_value": SECRET}
    source = StaticRouteSource(
        routes={("carol", "lab"): Route("carol", "lab", **running),
                ("dave", "lab"): Route("dave", "lab", **running)},
        principals={"carol-session": Principal("carol", False),
                    "carol-token": Principal("carol", False),
                    "root-token": Principal("root", True),
                    "dave-token": Principal("dave", False)},
    )
    settings = load_settings(data_dir=tmp_path, hub_port=1)
    app = create_app(settings, source)
    runner = await start_proxy(app, "127.0.0.1", 0)
    socket_path = tmp_path / "proxy.sock"
    control = await start_control(app[PROXY_KEY].revoke, app[PROXY_KEY].share_changed,
                                  socket_path)
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", source, socket_path
    await control.cleanup()
    await runner.cleanup()
    await up_runner.cleanup()


async def _closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> float:
    started = time.monotonic()
    msg = await ws.receive(timeout=seconds)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
    return time.monotonic() - started


async def test_disabling_a_user_closes_her_websockets_at_once(revocable, client) -> None:
    url, source, socket_path = revocable
    assert stat.S_IMODE(os.stat(socket_path).st_mode) & 0o077 == 0  # labspace alone
    headers = {"Authorization": "Bearer root-token"}  # an admin, in another's workspace
    carol_ws = await client.ws_connect(f"{url}/user/carol/lab/ws",
                                       headers={"Authorization": "Bearer carol-token"})
    admin_ws = await client.ws_connect(f"{url}/user/dave/lab/ws", headers=headers)
    dave_ws = await client.ws_connect(f"{url}/user/dave/lab/ws",
                                      headers={"Authorization": "Bearer dave-token"})
    try:
        # The hub disables root: the database no longer knows the token, then the proxy is told.
        del source.principals["root-token"]
        await ProxyNotifier(socket_path).revoked(users=["root"])
        assert await _closed_within(admin_ws, 1.0) < 1.0
        assert admin_ws.close_code == 1008
        async with client.get(f"{url}/user/dave/lab/api/json", headers=headers) as resp:
            assert resp.status == 401  # not served from a stale cache entry
        # Revoking one token closes what it opened, and nothing else.
        del source.principals["carol-token"]
        await ProxyNotifier(socket_path).revoked(digests=[digest("carol-token")])
        assert await _closed_within(carol_ws, 1.0) < 1.0
        await dave_ws.send_str("still here")
        assert (await dave_ws.receive(timeout=5)).data == "still here"
    finally:
        for ws in (carol_ws, admin_ws, dave_ws):
            await ws.close()


async def test_an_unreachable_proxy_is_no_error(tmp_path: Path) -> None:
    await ProxyNotifier(tmp_path / "absent.sock").revoked(users=["x"])
    (tmp_path / "stale.sock").touch()
    await asyncio.wait_for(ProxyNotifier(tmp_path / "stale.sock").revoked(users=["x"]), 5)
