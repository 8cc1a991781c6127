"""The hub's side of the origin model, on a real labspace: Origin checks on every
cookie-authenticated change, tickets to workspace hosts, and revocation that cuts open
connections within a second."""

from __future__ import annotations

import time
from contextlib import closing
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx
import pytest

from labspace.testing import Stack
from tests.conftest import APPS_DOMAIN, Person, ensure_running

pytestmark = pytest.mark.docker

EVENTS = "api/events/subscribe"  # a Jupyter WebSocket every workspace serves


def test_a_change_from_another_origin_is_refused(stack: Stack, people: dict[str, Person]
                                                  ) -> None:
    """A page on another port or a sibling host is same-site: the hub's cookie comes along,
    so the hub itself checks where the change comes from."""
    with closing(people["admin"].browser()) as admin:
        page = admin.get("/hub/admin").text
        csrf = page.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
        for origin in ("http://127.0.0.1:1", f"http://evil.{APPS_DOMAIN}", "null"):
            refused = admin.post("/hub/admin/users", data={"name": "mallory", "_csrf": csrf},
                                 headers={"Origin": origin})
            assert refused.status_code == 403, origin
            assert "another site" in refused.text
            # Deleting an account (and its home) from another page: refused the same way.
            gone = admin.delete("/hub/api/users/bob", params={"delete_home": "true",
                                                             "confirm": "bob"},
                                headers={"Origin": origin, "X-CSRF-Token": csrf})
            assert gone.status_code == 403, origin
        del admin.headers["Origin"]
        assert admin.post("/hub/api/users", json={"name": "mallory"},
                          headers={"X-CSRF-Token": csrf}).status_code == 403
    with stack.client() as api:
        names = {u["name"] for u in api.get("/hub/api/users").json()}
        assert "mallory" not in names and "bob" in names
        # API tokens are not sent by browsers on their own: no Origin needed.
        made = api.post("/hub/api/users", json={"name": "origin-ok"})
        assert made.status_code == 201, made.text


def test_the_hub_hands_out_tickets_for_workspace_hosts(apps_stack: Stack) -> None:
    """(The real login and redirect chain runs in Chromium: test_origin_attacks.py. httpx
    keeps no Secure cookie over plain HTTP, so the session cookie is sent by hand here.)"""
    tokens = {}
    with apps_stack.client() as api:
        for name in ("tess", "uma"):
            api.post("/hub/api/users", json={"name": name})
            tokens[name] = api.post(f"/hub/api/users/{name}/tokens", json={}).json()["token"]
    ensure_running(Person("tess", "", tokens["tess"], apps_stack), "lab")
    host = f"lab.localhost:{apps_stack.public_port}"

    def open_as(name: str) -> httpx.Response:
        return httpx.get(f"{apps_stack.url}/user/tess/lab/tree?x=1", headers={
            "Host": host, "Accept": "text/html",
            "Cookie": f"__Host-labspace-session={tokens[name]}"})

    opened = open_as("tess")
    assert opened.status_code == 303
    target = urlsplit(opened.headers["Location"])
    assert target.netloc == f"lab--tess.{APPS_DOMAIN}:{apps_stack.public_port}"
    assert target.path == "/_labspace/auth"
    query = parse_qs(target.query)
    assert query["next"] == ["/user/tess/lab/tree?x=1"] and query["ticket"]
    assert opened.headers["Cache-Control"] == "no-store"
    # The proxy on the workspace host takes the ticket once, for a cookie of that host.
    auth = f"{apps_stack.url}{target.path}?{target.query}"
    first = httpx.get(auth, headers={"Host": target.netloc})
    assert first.status_code == 302, first.text
    assert first.headers["Set-Cookie"].startswith("__Host-labspace-app=")
    assert httpx.get(auth, headers={"Host": target.netloc}).status_code == 403
    assert open_as("uma").status_code == 404  # not hers: nothing to see


async def test_disabling_an_admin_closes_her_websocket_into_another_workspace(
        stack: Stack, people: dict[str, Person]) -> None:
    alice = people["alice"]
    ensure_running(alice, "watched")
    with stack.client() as api:
        made = api.post("/hub/api/users", json={"name": "temp-admin", "admin": True})
        assert made.status_code == 201, made.text
        token = api.post("/hub/api/users/temp-admin/tokens", json={}).json()["token"]
    url = f"{stack.url}/user/alice/watched/{EVENTS}"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
        mine = await session.ws_connect(url, headers={"Authorization": f"Bearer {alice.token}"})
        with stack.client() as api:
            assert api.post("/hub/api/users/temp-admin/disable").status_code == 200
        started = time.monotonic()
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert time.monotonic() - started < 1.0
        assert not mine.closed  # alice's own connection is untouched
        await mine.close()


async def test_logging_out_closes_the_sessions_websockets(
        stack: Stack, people: dict[str, Person]) -> None:
    bob = people["bob"]
    ensure_running(bob, "scratch")
    with closing(bob.browser()) as browser:
        cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        csrf = browser.get("/hub/token").text.split('name="_csrf" value="', 1)[1].split('"')[0]
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{stack.url}/user/bob/scratch/{EVENTS}",
                                          headers={"Cookie": cookies, "Origin": stack.url})
            assert browser.post("/hub/logout", data={"_csrf": csrf}).status_code == 303
            started = time.monotonic()
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert time.monotonic() - started < 1.0
