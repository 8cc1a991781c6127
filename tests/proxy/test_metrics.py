"""The proxy's metrics, end to end on loopback: real requests move the counters, WebSockets
are counted open and in all, upstream errors are counted, and the exposition is served on
the control socket only, never on the public port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from labspace.config import load_settings
from labspace.origins import Origins
from labspace.proxy.app import PROXY_KEY, create_app, start_proxy
from labspace.proxy.control import start_control
from labspace.proxy.metrics import ProxyMetrics
from labspace.proxy.source import Principal, Route

from .conftest import SECRET, Recorder, StaticRouteSource, free_port, hub_app, serve, upstream_app

TOKEN = {"Authorization": "Bearer alice-token"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Counted:
    url: str  # the public port
    socket: Path  # the control socket
    metrics: ProxyMetrics


@pytest_asyncio.fixture(loop_scope="session")
async def counted(tmp_path: Path) -> AsyncIterator[Counted]:
    up_runner, up_port = await serve(upstream_app(Recorder()))
    hub_runner, hub_port = await serve(hub_app(Recorder()))
    running = {"state": "running", "target": f"http://127.0.0.1:{up_port}",
               "secret_value": SECRET}
    source = StaticRouteSource(
        routes={("alice", "lab"): Route("alice", "lab", **running),
                ("alice", "gone"): Route("alice", "gone", "running",
                                         f"http://127.0.0.1:{free_port()}", secret_value=SECRET)},
        principals={"alice-token": Principal("alice", False)})
    settings = load_settings(data_dir=tmp_path, hub_host="127.0.0.1", hub_port=hub_port)
    app = create_app(settings, source, metrics=True)
    runner = await start_proxy(app, "127.0.0.1", 0)
    proxy = app[PROXY_KEY]
    control = await start_control(proxy.revoke, proxy.share_changed, settings.control_socket,
                                  None, proxy.metrics.exposition)
    try:
        yield Counted(f"http://127.0.0.1:{runner.addresses[0][1]}", settings.control_socket,
                      proxy.metrics)
    finally:
        await control.cleanup()
        await runner.cleanup()
        await up_runner.cleanup()
        await hub_runner.cleanup()


async def scrape(socket: Path) -> Samples:
    connector = aiohttp.UnixConnector(path=str(socket))
    async with aiohttp.ClientSession(connector=connector) as http, http.get(
            "http://proxy/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def requests(found: Samples, kind: str, code: str) -> float:
    return found[("labspace_proxy_requests_total", frozenset({("kind", kind), ("code", code)}))]


async def test_requests_by_kind_and_status(counted: Counted) -> None:
    before = await scrape(counted.socket)
    async with aiohttp.ClientSession() as client:
        for path, headers, status in [("/user/alice/lab/json", TOKEN, 200),
                                      ("/user/alice/lab/json", {}, 401),
                                      ("/hub/api/", {}, 200),
                                      ("/", {}, 302),
                                      ("/nowhere", {}, 404),
                                      ("/user/alice/gone/", TOKEN, 502)]:
            async with client.get(counted.url + path, headers=headers,
                                  allow_redirects=False) as response:
                assert response.status == status, path
    after = await scrape(counted.socket)
    for kind, code, more in [("workspace", "2xx", 1), ("workspace", "4xx", 1),
                             ("hub", "2xx", 1), ("other", "3xx", 1), ("other", "4xx", 1),
                             ("workspace", "5xx", 1), ("claim", "2xx", 0)]:
        assert requests(after, kind, code) - requests(before, kind, code) == more, (kind, code)
    upstream = ("labspace_proxy_upstream_errors_total", frozenset({("upstream", "workspace")}))
    assert after[upstream] - before[upstream] == 1


async def test_websockets_open_and_in_all(counted: Counted) -> None:
    opened = ("labspace_proxy_websockets_total", frozenset())
    now = ("labspace_proxy_websockets_open", frozenset())
    before = await scrape(counted.socket)
    async with aiohttp.ClientSession() as client, client.ws_connect(
            counted.url + "/user/alice/lab/ws", headers=TOKEN) as ws:
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "ping"
        during = await scrape(counted.socket)
        assert during[now] == before[now] + 1
        assert during[opened] == before[opened] + 1
    for _ in range(100):  # the proxy sees the close a moment later
        after = await scrape(counted.socket)
        if after[now] == before[now] and requests(after, "workspace", "1xx") > requests(
                before, "workspace", "1xx"):
            break
        await asyncio.sleep(0.02)
    assert after[now] == before[now] and after[opened] == before[opened] + 1
    assert requests(after, "workspace", "1xx") == requests(before, "workspace", "1xx") + 1


async def test_not_on_the_public_port(counted: Counted) -> None:
    async with aiohttp.ClientSession() as client:
        for path in ("/metrics", "/_labspace/metrics", "/_labspace/proxy/metrics",
                     "/hub/../metrics", "/%6detrics"):
            for headers in ({}, TOKEN):
                async with client.get(counted.url + path, headers=headers) as response:
                    body = await response.text()
                    assert "labspace_proxy_requests" not in body, path


async def test_a_hub_that_does_not_answer_is_an_upstream_error(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, hub_host="127.0.0.1", hub_port=free_port())
    app = create_app(settings, StaticRouteSource(), metrics=True)
    runner = await start_proxy(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as client, client.get(
                f"http://127.0.0.1:{runner.addresses[0][1]}/hub/api/") as response:
            assert response.status == 503
        text = app[PROXY_KEY].metrics.exposition().decode()
    finally:
        await runner.cleanup()
    assert 'labspace_proxy_upstream_errors_total{upstream="hub"} 1.0' in text
    assert 'labspace_proxy_requests_total{code="5xx",kind="hub"} 1.0' in text


async def test_off_counts_nothing(tmp_path: Path) -> None:
    """LABSPACE_PROXY_METRICS=0 (benchmarks): the handler is not wrapped at all."""
    hub_runner, hub_port = await serve(hub_app(Recorder()))
    settings = load_settings(data_dir=tmp_path, hub_host="127.0.0.1", hub_port=hub_port)
    app = create_app(settings, StaticRouteSource(), metrics=False)
    runner = await start_proxy(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as client, client.get(
                f"http://127.0.0.1:{runner.addresses[0][1]}/hub/") as response:
            assert response.status == 200
        assert b'kind="hub"} 0.0' in app[PROXY_KEY].metrics.exposition()
    finally:
        await runner.cleanup()
        await hub_runner.cleanup()


@pytest.mark.parametrize(("host", "path", "kind"), [
    ("lab.localhost:8000", "/hub/login", "hub"),
    ("lab.localhost:8000", "/user/alice/lab/", "workspace"),
    ("lab.localhost:8000", "/tunnel/alice/lab/22", "tunnel"),
    ("lab.localhost:8000", "/apps/intro/s1/", "claim"),
    ("lab.localhost:8000", "/favicon.ico", "other"),
    ("lab.localhost:8000", "/hub", "hub"),
    ("lab.localhost:8000", "/hub?next=/", "hub"),
    ("lab.localhost:8000", "/hubris", "other"),
    ("lab.localhost:8000", "/user", "other"),
    ("lab.localhost:8000", "/tunnels", "other"),
    ("lab.localhost:8000", "/", "other"),
    ("lab.localhost:8000", "", "other"),
    ("lab--alice.apps.localhost:8000", "/user/alice/lab/", "workspace"),
    ("8080-lab--alice.apps.localhost:8000", "/", "share"),
])
def test_kinds(host: str, path: str, kind: str) -> None:
    metrics = ProxyMetrics(Origins("http://lab.localhost:8000", "apps.localhost"))
    assert metrics.kind_of(make_mocked_request("GET", path, headers={"Host": host})) == kind


def test_a_claim_host_is_a_claim() -> None:
    from labspace.apps.spec import new_slot

    origins = Origins("http://lab.localhost:8000", "apps.localhost")
    request = make_mocked_request("GET", "/apps/intro/x/",
                                  headers={"Host": origins.claim_host(new_slot())})
    assert ProxyMetrics(origins).kind_of(request) == "claim"


async def test_a_handler_that_raises_counts_as_aiohttp_answers() -> None:
    metrics = ProxyMetrics(Origins("http://lab.localhost:8000", None))

    async def refuses(request: web.Request) -> web.StreamResponse:
        raise web.HTTPRequestEntityTooLarge(max_size=1, actual_size=2)

    async def breaks(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("a bug")

    for handler in (refuses, breaks):
        with pytest.raises((web.HTTPException, RuntimeError)):
            await metrics.counted(handler)(make_mocked_request("GET", "/hub/x"))
    text = metrics.exposition().decode()
    assert 'labspace_proxy_requests_total{code="4xx",kind="hub"} 1.0' in text
    assert 'labspace_proxy_requests_total{code="5xx",kind="hub"} 1.0' in text
