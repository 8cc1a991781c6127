"""The link to an instant app with apps_domain: the claim on a host of its own.

The hub (in-process, FakeRuntime) claims a container and sends the browser to the claim's
host with a one-time ticket; the real proxy, reading the hub's database, turns it into a
cookie of that host alone and serves the app there. Without apps_domain, the claim URL and
its path-scoped cookie on labspace's own address, as before.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx
import pytest

from labspace.config import Settings
from labspace.identity.hostauth import SECURE_CLAIM_COOKIE, HostSigner
from labspace.proxy.app import create_app, start_proxy
from labspace.proxy.dbsource import DatabaseRouteSource
from tests.web.conftest import _in_process, hub_of

PUBLIC_URL = "http://lab.localhost:8000"
APPS_DOMAIN = "apps.lab.localhost"
HOST_MODE = {"public_url": PUBLIC_URL, "apps_domain": APPS_DOMAIN}
SLOT = re.compile(r"c[0-9a-f]{16}")


async def _admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    async for client, _ in _in_process(tmp_path, monkeypatch, admin=True,
                                       app_pool_interval=0.05, **settings):
        yield client


@pytest.fixture
async def host_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An admin of a hub with apps_domain, and the proxy's URL (the real proxy on loopback,
    reading the hub's database, with the hub's signing key)."""
    async for admin in _admin(tmp_path, monkeypatch, **HOST_MODE):
        settings = Settings(data_dir=tmp_path / "data", **HOST_MODE)
        source = DatabaseRouteSource(settings.db_url)
        runner = await start_proxy(create_app(settings, source), "127.0.0.1", 0)
        try:
            yield admin, f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()
            await source.close()


@pytest.fixture
async def path_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[httpx.AsyncClient]:
    async for admin in _admin(tmp_path, monkeypatch):
        yield admin


async def add_app(admin: httpx.AsyncClient, name: str = "intro", spares: int = 1) -> None:
    made = await admin.post("/hub/api/apps", json={
        "name": name, "template": "jupyterlab", "path": "lab",
        "pool": {"spares": spares, "max_claimed": 5}})
    assert made.status_code == 201, made.text
    await ready_spares(admin, name, spares)


async def ready_spares(admin: httpx.AsyncClient, name: str, want: int) -> None:
    deadline = time.monotonic() + 20
    while (await admin.get(f"/hub/api/apps/{name}")).json()["pool"]["ready"] < want:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


class Browser:
    """A browser on the hub's address: its own cookie for the hub, asking for HTML."""

    def __init__(self, admin: httpx.AsyncClient) -> None:
        self.client = httpx.AsyncClient(transport=admin._transport, base_url=PUBLIC_URL,
                                        headers={"Accept": "text/html"})
        self.cookie = ""

    async def get(self, path: str) -> httpx.Response:
        self.client.cookies.clear()
        headers = {"Cookie": self.cookie} if self.cookie else {}
        response = await self.client.get(path, headers=headers)
        if "labspace-browser" in response.cookies:
            self.cookie = f"labspace-browser={response.cookies['labspace-browser']}"
        return response

    async def open_link(self, name: str = "intro") -> httpx.Response:
        first = await self.get(f"/apps/{name}")
        assert first.status_code == 303, first.text
        return await self.get(first.headers["location"])


def ticket_url(location: str, name: str = "intro") -> tuple[str, str, str]:
    """(host, ticket, next) of the hub's redirect to a claim host."""
    parts = urlsplit(location)
    assert parts.scheme == "http" and parts.path == "/_labspace/claim", location
    host = parts.netloc
    slot = host.split(".")[0]
    assert SLOT.fullmatch(slot) and host == f"{slot}.{APPS_DOMAIN}:8000", host
    query = parse_qs(parts.query)
    assert query["next"] == [f"/apps/{name}/{slot}/lab"]
    return host, query["ticket"][0], query["next"][0]


async def on_host(proxy: str, host: str, path: str, cookie: str = "",
                  **params: str) -> tuple[int, dict[str, str], str]:
    headers = {"Host": host, "Accept": "text/html"}
    if cookie:
        headers["Cookie"] = cookie
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session, \
            session.get(proxy + path, params=params or None, headers=headers,
                        allow_redirects=False) as resp:
        return resp.status, dict(resp.headers), await resp.text()


async def test_a_claim_ends_on_its_own_host_with_the_app(host_mode) -> None:
    admin, proxy = host_mode
    await add_app(admin)
    ada = Browser(admin)
    claimed = await ada.open_link()
    assert claimed.status_code == 303
    assert "labspace-claim" not in claimed.headers.get("set-cookie", "")  # not on the hub
    assert claimed.headers["referrer-policy"] == "no-referrer"
    assert claimed.headers["cache-control"] == "no-store"
    host, ticket, next_path = ticket_url(claimed.headers["location"])
    slot = host.split(".")[0]
    # The ticket binds this host, the app and the claim's digest, signed with the hub's key.
    opened = HostSigner(hub_of(admin).settings.signing_key()).open_claim_ticket(
        ticket, host.split(":")[0])
    database = DatabaseRouteSource(hub_of(admin).settings.db_url)
    route = await database.claim_route("intro", slot)
    await database.close()
    assert opened is not None and route is not None
    assert (opened.app, opened.claim_digest) == ("intro", route.claim_digest)

    status, headers, _ = await on_host(proxy, host, "/_labspace/claim", ticket=ticket,
                                       next=next_path)
    assert status == 302 and headers["Location"] == next_path
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith(SECURE_CLAIM_COOKIE + "=")
    assert "domain" not in headers["Set-Cookie"].lower()
    status, _, body = await on_host(proxy, host, next_path, cookie)
    assert status == 200 and '"fake": true' in body  # the app, on its own host

    # A copied link, in another browser: the ticket is spent, the claim URL refused.
    assert (await on_host(proxy, host, "/_labspace/claim", ticket=ticket))[0] == 403
    status, _, page = await on_host(proxy, host, next_path)
    assert status == 403 and "another browser" in page.lower()
    # ... and on the hub's address the claim URL only sends it to that host.
    status, headers, _ = await on_host(proxy, "lab.localhost:8000", next_path, cookie)
    assert status == 302 and headers["Location"] == f"http://{host}{next_path}"
    # Nor does this claim's cookie open anyone else's claim.
    await ready_spares(admin, "intro", 1)
    bob = await Browser(admin).open_link()
    assert bob.status_code == 303, bob.text[:2000]
    bob_host, _, bob_next = ticket_url(bob.headers["location"])
    assert bob_host != host
    assert (await on_host(proxy, bob_host, bob_next, cookie))[0] == 403

    # The link again in the same browser: the same claim, a fresh ticket, a new cookie.
    again = await ada.get("/apps/intro")
    assert again.status_code == 303
    host_again, ticket_again, _ = ticket_url(again.headers["location"])
    assert host_again == host
    status, headers, _ = await on_host(proxy, host, "/_labspace/claim", ticket=ticket_again,
                                       next=next_path)
    assert status == 302
    new_cookie = headers["Set-Cookie"].split(";")[0]
    assert (await on_host(proxy, host, next_path, new_cookie))[0] == 200
    assert (await on_host(proxy, host, next_path, cookie))[0] == 403  # the old token's


async def test_the_queues_ready_answer_is_a_ticket_url(host_mode) -> None:
    admin, proxy = host_mode
    await add_app(admin, spares=0)
    ada = Browser(admin)
    page = await ada.open_link()
    assert page.status_code == 200  # the waiting page, on the hub's address
    place = re.search(r'data-ticket="([^"]+)"', page.text)
    assert place is not None
    deadline = time.monotonic() + 60
    while (answer := (await ada.get(f"/hub/apps/intro/queue/{place[1]}")).json())[
            "state"] != "ready":
        assert time.monotonic() < deadline, answer
    host, ticket, next_path = ticket_url(answer["url"])
    status, headers, _ = await on_host(proxy, host, "/_labspace/claim", ticket=ticket,
                                       next=next_path)
    assert status == 302
    cookie = headers["Set-Cookie"].split(";")[0]
    assert (await on_host(proxy, host, next_path, cookie))[0] == 200


async def test_path_mode_is_unchanged(path_mode) -> None:
    await add_app(path_mode)
    claimed = await Browser(path_mode).open_link()
    assert claimed.status_code == 303
    location = claimed.headers["location"]
    slot = location.split("/")[3]
    assert SLOT.fullmatch(slot) and location == f"/apps/intro/{slot}/lab"
    set_cookie = claimed.headers["set-cookie"]
    assert set_cookie.startswith("labspace-claim=")
    assert f"Path=/apps/intro/{slot}/" in set_cookie and "HttpOnly" in set_cookie
