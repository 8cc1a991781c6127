"""What the proxy counts as someone using a workspace (issue 10), and how the hub reads it.

The rules on their own (aiohttp's own request objects), then through the real proxy on
loopback in front of a real aiohttp app: a navigation and a POST count, a page's background
poll does not; WebSocket data frames count both ways, pings and the upgrade do not; an open
tunnel keeps its workspace in use; a workspace's own host and its shared ports count for it.
The hub's client reads it all from the real control socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import make_mocked_request

from labspace.config import load_settings
from labspace.proxy.activity import (
    FORGET_AFTER_S,
    ActivityTracker,
    claim_key,
    counts,
    workspace_key,
)
from labspace.proxy.app import PROXY_KEY, Proxy, create_app, start_proxy
from labspace.proxy.control import start_control
from labspace.proxy.source import Principal, Route
from labspace.workspaces.activity import ProxyActivity
from tests.proxy.conftest import SECRET, Recorder, StaticRouteSource, serve, upstream_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOMAIN = "apps.localhost"
TOKEN = {"Authorization": "Bearer alice-token"}


def _request(method: str, mode: str | None) -> aiohttp.web.Request:
    headers = {"Sec-Fetch-Mode": mode} if mode is not None else {}
    return make_mocked_request(method, "/user/alice/lab/", headers=headers)


@pytest.mark.parametrize(("method", "mode", "counted"), [
    ("GET", "navigate", True),  # a page opened, a link followed, a reload
    ("GET", None, True),  # curl, a script: no Fetch Metadata at all
    ("HEAD", None, True),
    ("GET", "cors", False),  # JupyterLab polling /api/kernels from an idle tab
    ("GET", "same-origin", False),
    ("GET", "no-cors", False),  # an image or script a page loads on its own
    ("HEAD", "cors", False),
    ("OPTIONS", "cors", False),  # a preflight of a poll
    ("GET", "websocket", False),  # the upgrade itself: its frames count instead
    ("POST", "cors", True),  # saving a notebook, starting a kernel
    ("PUT", "same-origin", True),
    ("DELETE", None, True),
    ("PATCH", "cors", True),
])
async def test_what_counts_as_use(method: str, mode: str | None, counted: bool) -> None:
    assert counts(_request(method, mode)) is counted


async def test_the_tracker_keeps_the_last_use_and_open_tunnels() -> None:
    now = [1000.0]
    tracker = ActivityTracker(clock=lambda: now[0])
    key = workspace_key("alice", "lab")
    assert key == "workspace:alice/lab" and claim_key("7") == "claim:7"
    tracker.request(key, _request("GET", "cors"))
    assert tracker.last(key) is None
    now[0] = 1010.0
    tracker.request(key, _request("GET", "navigate"))
    assert tracker.last(key) == 1010.0
    stamps, stamped = tracker.frames(key)  # what the WebSocket pumps write, per data frame
    stamps[stamped] = 1011.0
    assert tracker.last(key) == 1011.0
    with tracker.tunnel(key):
        now[0] = 1020.0
        with tracker.tunnel(key):
            assert tracker.open_tunnels(key) == 2
            assert tracker.snapshot()["tunnels"] == {key: 2}
        assert tracker.open_tunnels(key) == 1
        now[0] = 1030.0
    assert tracker.open_tunnels(key) == 0 and tracker.last(key) == 1030.0  # touched on close
    assert tracker.snapshot() == {"now": 1030.0, "since": 1000.0,
                                  "activity": {key: 1030.0}, "tunnels": {}}
    tracker.touch(claim_key("7"))
    tracker.forget(claim_key("7"))
    assert tracker.last(claim_key("7")) is None
    now[0] = 1030.0 + FORGET_AFTER_S + 1  # a workspace deleted long ago leaves no entry
    assert tracker.snapshot()["activity"] == {}


@dataclass
class Tracked:
    url: str
    proxy: Proxy
    upstream_port: int
    socket: Path

    def last(self, name: str) -> float | None:
        assert self.proxy.activity is not None
        return self.proxy.activity.last(workspace_key("alice", name))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tracked(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Tracked]:
    up_runner, up_port = await serve(upstream_app(Recorder()))
    target = f"http://127.0.0.1:{up_port}"
    names = ("nav", "poll", "post", "ws", "ping", "tun", "host", "shared")
    source = StaticRouteSource(
        routes={("alice", name): Route("alice", name, "running", target, secret_value=SECRET)
                for name in names},
        principals={"alice-token": Principal("alice", False)},
        shares={("alice", "shared", up_port): "public"})
    data_dir = tmp_path_factory.mktemp("activity")
    settings = load_settings(data_dir=data_dir, hub_port=1, apps_domain=DOMAIN,
                             public_url="http://localhost:8000")
    app = create_app(settings, source)
    runner = await start_proxy(app, "127.0.0.1", 0)
    proxy = app[PROXY_KEY]
    assert proxy.activity is not None
    control = await start_control(proxy.revoke, proxy.share_changed, data_dir / "proxy.sock",
                                  proxy.activity.snapshot)
    yield Tracked(f"http://127.0.0.1:{runner.addresses[0][1]}", proxy, up_port,
                  data_dir / "proxy.sock")
    await control.cleanup()
    await runner.cleanup()
    await up_runner.cleanup()


async def _get(client: aiohttp.ClientSession, url: str, **headers: str) -> int:
    async with client.get(url, headers={**TOKEN, **headers}) as response:
        await response.read()
        return response.status


async def test_a_navigation_and_a_post_count_a_background_poll_does_not(
        tracked: Tracked, client: aiohttp.ClientSession) -> None:
    before = time.time()
    for _ in range(3):
        assert await _get(client, f"{tracked.url}/user/alice/poll/api/kernels",
                          **{"Sec-Fetch-Mode": "cors"}) == 200
    assert tracked.last("poll") is None
    assert await _get(client, f"{tracked.url}/user/alice/nav/lab",
                      **{"Sec-Fetch-Mode": "navigate"}) == 200
    async with client.post(f"{tracked.url}/user/alice/post/api/contents", data=b"{}",
                           headers={**TOKEN, "Sec-Fetch-Mode": "cors"}) as response:
        assert response.status == 200
    for name in ("nav", "post"):
        last = tracked.last(name)
        assert last is not None and before <= last <= time.time()


async def test_websocket_data_frames_count_pings_and_the_upgrade_do_not(
        tracked: Tracked, client: aiohttp.ClientSession) -> None:
    async with client.ws_connect(f"{tracked.url}/user/alice/ping/ws", headers=TOKEN,
                                 autoping=False) as ws:
        await ws.ping(b"are you there")
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.PONG
        assert tracked.last("ping") is None  # an open tab with only pings is idle
    async with client.ws_connect(f"{tracked.url}/user/alice/ws/ws", headers=TOKEN) as ws:
        assert tracked.last("ws") is None
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "hello"
        first = tracked.last("ws")
        assert first is not None
        await asyncio.sleep(0.05)
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive(timeout=5)).data == b"\x00\x01"
        second = tracked.last("ws")
        assert second is not None and second > first


async def test_an_open_tunnel_keeps_its_workspace_in_use(
        tracked: Tracked, client: aiohttp.ClientSession) -> None:
    assert tracked.proxy.activity is not None
    key = workspace_key("alice", "tun")
    url = f"{tracked.url}/tunnel/alice/tun/{tracked.upstream_port}"
    async with client.ws_connect(url, headers=TOKEN) as ws:
        assert tracked.proxy.activity.open_tunnels(key) == 1
        seen = await ProxyActivity(tracked.socket).fetch()
        assert seen.tunnels_open(key) == 1
        await ws.close()
    for _ in range(100):  # the proxy's side ends a moment after the client's
        if tracked.proxy.activity.open_tunnels(key) == 0:
            break
        await asyncio.sleep(0.02)
    assert tracked.proxy.activity.open_tunnels(key) == 0
    assert (await ProxyActivity(tracked.socket).fetch()).tunnels_open(key) == 0
    assert tracked.last("tun") is not None  # closing it counts as a last use


async def test_a_workspace_host_and_a_shared_port_count_for_their_workspace(
        tracked: Tracked, client: aiohttp.ClientSession) -> None:
    await _get(client, f"{tracked.url}/user/alice/host/lab", Host=f"host--alice.{DOMAIN}")
    assert tracked.last("host") is not None
    await _get(client, f"{tracked.url}/dashboard",
               Host=f"{tracked.upstream_port}-shared--alice.{DOMAIN}")
    assert tracked.last("shared") is not None


async def test_the_hub_reads_the_activity_on_the_control_socket(
        tracked: Tracked, client: aiohttp.ClientSession) -> None:
    await _get(client, f"{tracked.url}/user/alice/nav/lab")
    snapshot = await ProxyActivity(tracked.socket).fetch()
    assert snapshot.available
    assert abs(snapshot.now - time.time()) < 5
    assert snapshot.since <= snapshot.last_use(workspace_key("alice", "nav")) <= snapshot.now
    # A key the proxy never saw was not used since it began recording, and no earlier.
    assert snapshot.last_use(workspace_key("alice", "never")) == snapshot.since


async def test_no_answer_is_no_knowledge(tmp_path: Path) -> None:
    """An absent socket, a stale one, and a proxy that records no activity: the snapshot
    says it knows nothing (the culler then stops nothing)."""
    assert not (await ProxyActivity(tmp_path / "absent.sock").fetch()).available
    (tmp_path / "stale.sock").touch()
    assert not (await ProxyActivity(tmp_path / "stale.sock").fetch()).available
    settings = load_settings(data_dir=tmp_path, hub_port=1)
    app = create_app(settings, StaticRouteSource(), track_activity=False)
    proxy = app[PROXY_KEY]
    assert proxy.activity is None
    control = await start_control(proxy.revoke, proxy.share_changed, tmp_path / "proxy.sock")
    try:
        assert not (await ProxyActivity(tmp_path / "proxy.sock").fetch()).available
    finally:
        await control.cleanup()
