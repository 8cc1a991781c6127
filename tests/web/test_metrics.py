"""/hub/metrics on the in-process hub (FakeRuntime): the figures move when workspaces start
and fail and when apps are claimed, the proxy's half is appended from its control socket (or
labspace_proxy_up is 0), and nobody but an admin or the metrics token reads any of it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from labspace.config import load_settings
from labspace.gpus import GpuService, NvmlSource
from labspace.proxy.app import create_app as create_proxy
from labspace.proxy.control import start_control
from labspace.templates.model import LimitSpec
from labspace.testing import FakeRuntime
from labspace.testing.nvml import FakeNvml
from labspace.workspaces.metrics import START_FAILURE_REASONS
from tests.proxy.conftest import StaticRouteSource
from tests.web.conftest import _in_process, browser_as, client_as, hub_of
from tests.web.test_api_states import settle

GPU_RECORDING = Path(__file__).parents[1] / "gpus" / "recordings" / "2gpus-mig-off.json"
TOKEN = "m" * 40  # the metrics token of the hub built with one


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition by (name, labels), parsed by prometheus_client."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, /,
          **labels: str) -> float:
    return found[(metric, frozenset(labels.items()))]


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]],
                                                      float]:
    response = await client.get("/hub/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


@pytest.fixture
async def token_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeRuntime]]:
    """An admin's API on a hub with metrics_token set."""
    async for pair in _in_process(tmp_path, monkeypatch, admin=True, metrics_token=TOKEN):
        yield pair


async def test_starts_and_states_move(admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, runtime = admin_api
    before = await scrape(api)
    assert value(before, "labspace_workspaces", state="running") == 0
    assert value(before, "labspace_workspace_start_duration_seconds_count",
                 outcome="success") == 0
    for reason in START_FAILURE_REASONS:  # every reason is there from the start, at 0
        assert value(before, "labspace_workspace_start_failures_total", reason=reason) == 0
    assert value(before, "labspace_proxy_up") == 0  # no proxy in this test

    await api.post("/hub/api/workspaces", json={"name": "lab", "template": "jupyterlab"})
    assert (await settle(api, "lab"))["state"] == "running"
    runtime.crash_after_start = True
    await api.post("/hub/api/workspaces", json={"name": "bad", "template": "jupyterlab"})
    assert (await settle(api, "bad"))["state"] == "failed"

    after = await scrape(api)
    assert value(after, "labspace_workspaces", state="running") == 1
    assert value(after, "labspace_workspaces", state="failed") == 1
    assert value(after, "labspace_workspace_start_duration_seconds_count",
                 outcome="success") == 1
    assert value(after, "labspace_workspace_start_duration_seconds_count",
                 outcome="failure") == 1
    assert value(after, "labspace_workspace_start_failures_total", reason="exited") == 1
    assert value(after, "labspace_workspace_start_duration_seconds_sum", outcome="success") > 0


async def test_a_start_that_times_out_is_counted_as_such(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, runtime = admin_api
    runtime.never_healthy = True  # start_timeout is 2 s in these tests
    await api.post("/hub/api/workspaces", json={"name": "deaf", "template": "jupyterlab"})
    for _ in range(60):
        if (await api.get("/hub/api/workspaces/ada/deaf")).json()["state"] == "failed":
            break
        await asyncio.sleep(0.1)
    found = await scrape(api)
    assert value(found, "labspace_workspace_start_failures_total", reason="timeout") == 1
    assert value(found, "labspace_workspace_start_duration_seconds_bucket", outcome="failure",
                 le="1.0") == 0  # it took the 2 s it was given
    assert value(found, "labspace_workspace_start_duration_seconds_bucket", outcome="failure",
                 le="3.0") == 1


async def test_a_start_refused_by_a_quota_is_counted(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    assert (await api.put("/hub/api/quotas/user/ada", json={"running": 0})).status_code == 200
    made = await api.post("/hub/api/workspaces", json={"name": "lab", "template": "jupyterlab",
                                                       "start": False})
    assert made.status_code == 201
    assert (await api.post("/hub/api/workspaces/ada/lab/start")).status_code == 409
    found = await scrape(api)
    assert value(found, "labspace_workspace_start_failures_total", reason="quota") == 1
    assert value(found, "labspace_workspace_start_duration_seconds_count",
                 outcome="failure") == 0  # it never began


async def test_pools_claims_and_queue(admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    made = await api.post("/hub/api/apps", json={"name": "intro", "template": "jupyterlab",
                                                 "pool": {"spares": 1}})
    assert made.status_code == 201, made.text
    pools = hub_of(api).apps.pools
    for _ in range(100):
        if pools.pool("intro").ready:
            break
        await asyncio.sleep(0.05)
    found = await scrape(api)
    assert value(found, "labspace_app_containers", app="intro", state="ready") == 1
    assert value(found, "labspace_app_claims_total", app="intro") == 0
    await pools.claim("intro", browser="b1", address="192.0.2.1")
    found = await scrape(api)
    assert value(found, "labspace_app_containers", app="intro", state="claimed") == 1
    assert value(found, "labspace_app_claims_total", app="intro") == 1
    assert value(found, "labspace_app_claim_latency_seconds_count", app="intro") == 1
    assert value(found, "labspace_app_claim_latency_seconds_bucket", app="intro",
                 le="+Inf") == 1
    assert ("labspace_app_queued", frozenset({("app", "intro")})) in found


async def test_the_proxys_half_is_appended(admin_api: tuple[httpx.AsyncClient, FakeRuntime]
                                           ) -> None:
    """A real proxy's control socket at the hub's control_socket path: its exposition comes
    with the hub's, under the one scrape."""
    api, _ = admin_api
    hub = hub_of(api)
    settings = load_settings(data_dir=hub.settings.data_dir)
    proxy_app = create_proxy(settings, StaticRouteSource())
    from labspace.proxy.app import PROXY_KEY

    proxy = proxy_app[PROXY_KEY]
    proxy.metrics.upstream_error("hub")
    control = await start_control(proxy.revoke, proxy.share_changed,
                                  hub.settings.control_socket, None, proxy.metrics.exposition)
    try:
        found = await scrape(api)
    finally:
        await control.cleanup()
    assert value(found, "labspace_proxy_up") == 1
    assert value(found, "labspace_proxy_upstream_errors_total", upstream="hub") == 1
    assert value(found, "labspace_proxy_requests_total", kind="workspace", code="2xx") == 0
    assert ("labspace_workspaces", frozenset({("state", "running")})) in found  # the hub's


async def test_a_proxy_that_does_not_answer_leaves_the_hubs_half(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    """A socket file nobody listens on (a proxy killed without cleaning up)."""
    api, _ = admin_api
    import socket

    path = hub_of(api).settings.control_socket
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    found = await scrape(api)
    assert value(found, "labspace_proxy_up") == 0
    assert ("labspace_workspaces", frozenset({("state", "stopped")})) in found


async def test_a_stuck_proxy_costs_the_scrape_a_second_at_most(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    """A control socket that accepts and never answers (a proxy stuck in a long call)."""
    api, _ = admin_api

    async def stuck(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/metrics", stuck)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    await web.UnixSite(runner, str(hub_of(api).settings.control_socket)).start()
    try:
        began = time.monotonic()
        found = await scrape(api)
        took = time.monotonic() - began
    finally:
        await runner.cleanup()
    assert value(found, "labspace_proxy_up") == 0
    assert took < 3, took  # PROXY_TIMEOUT is 1 s


async def test_the_metrics_token(token_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = token_api
    prometheus = httpx.AsyncClient(transport=api._transport, base_url="http://hub",
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    async with prometheus:
        assert value(await scrape(prometheus), "labspace_proxy_up") == 0
        # It opens /hub/metrics and nothing else: it is no API token.
        assert (await prometheus.get("/hub/api/users")).status_code == 401
        assert (await prometheus.get("/hub/api/workspaces")).status_code == 401
    await scrape(api)  # an admin's API token still works with a token configured


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        load_settings(metrics_token="short")


REFUSED = (401, 403)


async def _refused(client: httpx.AsyncClient, **headers: str | bytes) -> None:
    response = await client.get("/hub/metrics", headers=headers)
    assert response.status_code in REFUSED or (
        response.status_code == 303 and "/hub/login" in response.headers["location"]), (
        response.status_code)
    assert "labspace_" not in response.text


async def test_who_is_refused(token_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = token_api
    anonymous = httpx.AsyncClient(transport=api._transport, base_url="http://hub")
    member_token = await client_as(api, "member")
    member_session = await browser_as(api, "member")
    async with anonymous, member_token, member_session:
        await _refused(anonymous)
        await _refused(anonymous, Accept="text/html")
        await _refused(member_token)
        await _refused(member_session)
        for forged in (TOKEN[:-1] + "n", TOKEN + "m", TOKEN[:32], TOKEN.upper(), "",
                       " ", TOKEN + "\x00", "\x00" + TOKEN):
            await _refused(anonymous, Authorization=f"Bearer {forged}")
        await _refused(anonymous, Authorization=b"Bearer " + ("é" * 40).encode())
        await _refused(anonymous, Authorization="Bearer ")
        await _refused(anonymous, Authorization=TOKEN)  # no scheme
        await _refused(anonymous, Authorization=f"Basic {TOKEN}")
        await _refused(anonymous, Authorization="Bearer " + "m" * 1_000_000)
        # A member's own token in the header is a valid credential, only not an admin's.
        assert (await member_token.get("/hub/metrics")).status_code == 403


async def test_without_a_token_only_admins(admin_api: tuple[httpx.AsyncClient, FakeRuntime]
                                           ) -> None:
    api, _ = admin_api
    anonymous = httpx.AsyncClient(transport=api._transport, base_url="http://hub")
    admin_session = await browser_as(api, "ada")
    async with anonymous, admin_session:
        # An empty setting is no token: "Bearer " with nothing after it opens nothing.
        await _refused(anonymous, Authorization="Bearer ")
        await _refused(anonymous, Authorization="Bearer  ")
        await scrape(admin_session)  # an admin's browser session


async def test_gpu_and_quota_figures(admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    """Each GPU's utilization, memory and holders (recorded NVML answers), and each quota's
    limits and use, read at scrape time."""
    api, _ = admin_api
    hub = hub_of(api)
    nvml = FakeNvml(json.loads(GPU_RECORDING.read_text())["devices"])
    hub.gpus = hub.manager.gpus = GpuService(NvmlSource(nvml))
    await hub.gpus.open()
    base = await hub.templates.get("jupyterlab")
    await hub.templates.add(base.model_copy(update={
        "name": "gpu", "display_name": "gpu", "limits": LimitSpec(gpus=1, cpus=2)}))
    quota = await api.put("/hub/api/quotas/user/ada", json={"gpus": 2, "running": 3})
    assert quota.status_code == 200, quota.text
    before = await scrape(api)
    first = str(nvml.devices[0]["uuid"]) if nvml.devices else ""
    gpu0 = {"gpu": "0", "uuid": first, "name": str(nvml.devices[0]["name"])}
    assert value(before, "labspace_gpu_holders", **gpu0) == 0
    assert value(before, "labspace_gpu_memory_total_bytes", **gpu0) > 0
    assert value(before, "labspace_quota_limit", scope="user", name="ada", resource="gpus") == 2
    assert value(before, "labspace_quota_use", scope="user", name="ada", resource="gpus") == 0
    assert ("labspace_quota_limit", frozenset({"scope": "user", "name": "ada",
                                               "resource": "cpus"}.items())) not in before

    made = await api.post("/hub/api/workspaces", json={"name": "lab", "template": "gpu"})
    assert made.status_code == 201, made.text
    assert (await settle(api, "lab"))["state"] == "running"
    after = await scrape(api)
    assert value(after, "labspace_gpu_holders", **gpu0) == 1
    assert value(after, "labspace_quota_use", scope="user", name="ada", resource="gpus") == 1
    assert value(after, "labspace_quota_use", scope="user", name="ada", resource="running") == 1
