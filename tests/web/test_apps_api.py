"""The instant apps' API and the link itself, on the in-process hub (FakeRuntime): who may
manage apps, bad definitions, and what a browser meets at /apps/<app>: the cookie check,
the claim, the queue bound to its browser, capacity, the per-address limit, users only."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from labspace.testing import FakeRuntime
from tests.web.conftest import _in_process, client_as, hub_of


async def ready(api: httpx.AsyncClient, name: str, want: int) -> None:
    deadline = time.monotonic() + 10
    while (await api.get(f"/hub/api/apps/{name}")).json()["pool"]["ready"] < want:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def browser(api: httpx.AsyncClient, address: str = "") -> httpx.AsyncClient:
    """A new browser (its own cookie jar), no account."""
    return httpx.AsyncClient(transport=api._transport, base_url="http://hub",
                             headers={"Accept": "text/html"})


async def open_link(visitor: httpx.AsyncClient, name: str) -> httpx.Response:
    """First visit: the id cookie is set and checked, then the claim (or a queue page)."""
    first = await visitor.get(f"/apps/{name}")
    assert first.status_code == 303 and first.headers["location"] == f"/apps/{name}?cookies=1"
    return await visitor.get(first.headers["location"])


async def test_who_manages_apps(admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    hub = hub_of(api)
    member = await client_as(api, "member")
    teacher = await client_as(api, "teacher")
    other = await client_as(api, "other")
    await hub.users.update("teacher", role="instructor")
    await hub.users.update("other", role="instructor")
    async with member, teacher, other:
        body = {"name": "intro", "template": "jupyterlab", "pool": {"spares": 0}}
        assert (await member.post("/hub/api/apps", json=body)).status_code == 403
        assert (await member.get("/hub/api/apps")).status_code == 403
        made = await teacher.post("/hub/api/apps", json=body)
        assert made.status_code == 201 and made.json()["url"].endswith("/apps/intro")
        assert (await other.post("/hub/api/apps/intro/drain")).status_code == 403
        assert (await other.delete("/hub/api/apps/intro")).status_code == 403
        assert (await teacher.post("/hub/api/apps/intro/drain")).json()["pool"]["draining"]
        assert (await api.post("/hub/api/apps/intro/refresh")).status_code == 200  # an admin
        assert (await teacher.delete("/hub/api/apps/intro")).status_code == 204
    audit = (await api.get("/hub/api/audit?action=app.add")).json()
    assert [entry["actor"] for entry in audit] == ["teacher"]


@pytest.mark.parametrize("body", [
    {"name": "Bad Name", "template": "jupyterlab"},
    {"name": "ok", "template": "jupyterlab", "pool": {"spares": -1}},
    {"name": "ok", "template": "jupyterlab", "path": "../../hub/api"},
    {"name": "ok", "template": "jupyterlab", "path": "lab\\..\\..\\hub"},
    {"name": "ok", "template": "jupyterlab", "path": "lab//x"},
    {"name": "ok", "template": "jupyterlab", "surprise": True},
])
async def test_bad_definitions_are_refused(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime], body: dict[str, object]) -> None:
    api, _ = admin_api
    refused = await api.post("/hub/api/apps", json=body)
    assert refused.status_code == 422, refused.text
    assert (await api.get("/hub/api/apps")).json() == []


async def test_an_unknown_template_is_named(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    refused = await api.post("/hub/api/apps", json={"name": "ok", "template": "nope"})
    assert refused.status_code == 404 and "nope" in refused.json()["error"]


async def test_the_link_claims_for_its_browser_and_queues_the_rest(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, runtime = admin_api
    await api.post("/hub/api/apps", json={"name": "intro", "template": "jupyterlab",
                                          "path": "lab", "pool": {"spares": 1}})
    await ready(api, "intro", 1)
    async with browser(api) as ada, browser(api) as bob:
        claimed = await open_link(ada, "intro")
        assert claimed.status_code == 303
        assert claimed.headers["location"].startswith("/apps/intro/c")
        cookie = claimed.headers["set-cookie"]
        assert "labspace-claim=" in cookie and "HttpOnly" in cookie
        assert f"Path={claimed.headers['location'].rsplit('/', 1)[0]}/" in cookie
        runtime.start_delay = 0.5  # the next spare takes a while: bob waits in the queue
        await asyncio.sleep(0)
        waiting = await open_link(bob, "intro")
        if waiting.status_code == 200:
            assert 'id="app-wait"' in waiting.text
            ticket = waiting.text.split('data-ticket="', 1)[1].split('"', 1)[0]
            async with browser(api) as eve:  # another browser cannot use bob's place
                await eve.get("/apps/intro")
                stolen = await eve.get(f"/hub/apps/intro/queue/{ticket}")
                assert stolen.status_code == 404
            answer = await bob.get(f"/hub/apps/intro/queue/{ticket}")
            while answer.json()["state"] == "waiting":
                answer = await bob.get(f"/hub/apps/intro/queue/{ticket}")
            assert answer.json()["state"] == "ready"
            assert "labspace-claim=" in answer.headers["set-cookie"]
        else:  # the spare was ready again already
            assert waiting.status_code == 303


async def test_capacity_and_the_per_address_limit(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    async for api, _ in _in_process(tmp_path, monkeypatch, admin=True, app_claim_burst=2,
                                    app_claim_rate=1):
        await api.post("/hub/api/apps", json={"name": "intro", "template": "jupyterlab",
                                              "pool": {"spares": 1, "max_claimed": 1}})
        await ready(api, "intro", 1)
        async with browser(api) as ada, browser(api) as bob, browser(api) as eve:
            assert (await open_link(ada, "intro")).status_code == 303
            full = await open_link(bob, "intro")
            assert full.status_code == 503 and "at capacity" in full.text
            limited = await open_link(eve, "intro")  # the third claim from one address
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


async def test_no_cookies_no_claim_and_users_only_apps(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    await api.post("/hub/api/apps", json={"name": "intro", "template": "jupyterlab",
                                          "access": "users", "pool": {"spares": 0}})
    async with browser(api) as anonymous:
        sent = await anonymous.get("/apps/intro")
        assert sent.status_code == 303 and sent.headers["location"].startswith("/hub/login")
    await api.post("/hub/api/apps", json={"name": "open", "template": "jupyterlab",
                                          "pool": {"spares": 0}})
    async with browser(api) as cookieless:
        refused = await cookieless.get("/apps/open?cookies=1")  # it kept no cookie
        assert refused.status_code == 400 and "cookies" in refused.text
    async with browser(api) as visitor:
        assert (await visitor.get("/apps/ghost")).status_code == 404
