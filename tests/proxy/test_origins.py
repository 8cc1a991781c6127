"""The proxy's side of the origin model, attacked as a lab member would.

Path mode (no apps_domain): workspace pages run on labspace's own origin, so only the owner's
own browser session may load them, and only from that origin's pages. With apps_domain: each
workspace on its own host, entered with a single-use ticket from the hub.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from labspace.config import load_settings
from labspace.identity.credentials import digest
from labspace.identity.hostauth import SECURE_APP_COOKIE, HostSigner
from tests.proxy.conftest import APPS_DOMAIN, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALICE = {"Cookie": "labspace-session=alice-session"}
ROOT = {"Cookie": "labspace-session=root-session"}
BROWSER = {"Accept": "text/html"}
ALICE_HOST = f"lab--alice.{APPS_DOMAIN}:8000"
BOB_HOST = f"lab--bob.{APPS_DOMAIN}:8000"


@pytest.fixture(scope="module", autouse=True)
def root_session(proxied: Stack, apps_proxied: Stack) -> None:
    from labspace.proxy.source import Principal

    for stack in (proxied, apps_proxied):
        stack.source.principals["root-session"] = Principal("root", True)


# ------------------------------------------------------------------ path mode


async def test_path_mode_refuses_an_admins_browser_session(proxied: Stack, client):
    """An admin's session on a user's workspace would run the user's code as the admin."""
    async with client.get(f"{proxied.url}/user/alice/lab/api/json",
                          headers={**ROOT, **BROWSER}) as resp:
        assert resp.status == 403
        page = await resp.text()
        assert "only their owner" in page and "apps_domain" in page
    async with client.get(f"{proxied.url}/user/alice/lab/api/json",
                          headers={"Authorization": "Bearer root-token"}) as resp:
        assert resp.status == 200  # scripts with an API token keep working


async def test_path_mode_refuses_changes_and_websockets_from_other_origins(proxied: Stack,
                                                                          client):
    url = f"{proxied.url}/user/alice/lab/api/json"
    for origin in (None, "http://127.0.0.1:1", "http://evil.localhost:8000", "null"):
        headers = dict(ALICE) if origin is None else {**ALICE, "Origin": origin}
        async with client.post(url, headers=headers, data=b"x") as resp:
            assert resp.status == 403, origin
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(f"{proxied.url}/user/alice/lab/ws", headers=headers)
        assert refused.value.status == 403
    async with client.post(url, headers={**ALICE, "Origin": proxied.url}, data=b"x") as resp:
        assert resp.status == 200
    seen = len(proxied.upstream.requests)
    async with client.post(url, headers={**ALICE, "Origin": "http://127.0.0.1:1"}) as resp:
        assert resp.status == 403
    assert len(proxied.upstream.requests) == seen  # refused before the workspace saw it


async def test_no_service_worker_from_a_workspace_on_the_hubs_origin(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/alice/lab/sw.js",
                          headers={**ALICE, "Service-Worker": "script"}) as resp:
        assert resp.status == 403
    async with client.get(f"{proxied.url}/user/alice/lab/sneaky", headers=ALICE) as resp:
        assert resp.status == 200
        assert "Service-Worker-Allowed" not in resp.headers
        cookies = resp.headers.getall("Set-Cookie", [])
    assert cookies == ["kept=1; Path=/user/; HttpOnly"]


# ------------------------------------------------------------------ apps_domain


@pytest.fixture(scope="module")
def signer(proxy_data_dir: Path) -> HostSigner:
    """Signs as the hub of these proxies would (same data directory, same key)."""
    return HostSigner(load_settings(data_dir=proxy_data_dir).signing_key())


async def test_browsers_on_the_hub_host_go_through_the_hub(apps_proxied: Stack, client):
    async with client.get(f"{apps_proxied.url}/user/alice/lab/tree?x=1",
                          headers={**ALICE, **BROWSER}) as resp:
        assert resp.status == 200 and (await resp.json())["hub"] is True
    assert apps_proxied.hub.last["raw_path"] == "/user/alice/lab/tree?x=1"
    async with client.post(f"{apps_proxied.url}/user/alice/lab/api/json", headers=ALICE) as r:
        assert r.status == 403  # no workspace content or changes on the hub's host
    async with client.get(f"{apps_proxied.url}/user/alice/lab/api/json",
                          headers={"Authorization": "Bearer alice-token"}) as resp:
        assert resp.status == 200 and (await resp.json())["ok"] is True  # scripts: direct


async def test_a_ticket_becomes_a_host_cookie_once(apps_proxied: Stack, client, signer):
    host = ALICE_HOST.split(":")[0]
    ticket = signer.ticket(host, digest("alice-session"))
    auth = f"{apps_proxied.url}/_labspace/auth"
    params = {"ticket": ticket, "next": "/user/alice/lab/api/json"}
    async with client.get(auth, params=params, headers={"Host": ALICE_HOST},
                          allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/user/alice/lab/api/json"
        set_cookie = resp.headers["Set-Cookie"]
    assert set_cookie.startswith(SECURE_APP_COOKIE + "=")
    attributes = set_cookie.lower()
    assert "httponly" in attributes and "secure" in attributes and "path=/" in attributes
    assert "domain" not in attributes
    async with client.get(auth, params=params, headers={"Host": ALICE_HOST},
                          allow_redirects=False) as again:
        assert again.status == 403  # single use
    cookie = set_cookie.split(";")[0]
    async with client.get(f"{apps_proxied.url}/user/alice/lab/api/json",
                          headers={"Host": ALICE_HOST, "Cookie": cookie + "; theme=x"}) as ok:
        assert ok.status == 200
    seen = apps_proxied.upstream.last["headers"]
    assert seen.get("Cookie") == "theme=x"  # the app never sees labspace's cookies
    # Alice's cookie is worth nothing on Bob's host, and a ticket for her host not there.
    async with client.get(f"{apps_proxied.url}/user/bob/lab/api/json",
                          headers={"Host": BOB_HOST, "Cookie": cookie}) as other:
        assert other.status == 401
    bob_params = {"ticket": signer.ticket(host, digest("alice-session"))}
    async with client.get(auth, params=bob_params, headers={"Host": BOB_HOST},
                          allow_redirects=False) as crossed:
        assert crossed.status == 403


async def test_a_workspace_host_serves_only_its_workspace(apps_proxied: Stack, client,
                                                         signer):
    cookie = f"{SECURE_APP_COOKIE}=" + signer.cookie(ALICE_HOST.split(":")[0],
                                                       digest("alice-session"))
    headers = {"Host": ALICE_HOST, "Cookie": cookie}
    for path, status in (("/hub/api/users", 404), ("/user/bob/lab/api/json", 404),
                         ("/", 302), ("/user/alice/lab/api/json", 200)):
        async with client.get(apps_proxied.url + path, headers=headers,
                              allow_redirects=False) as resp:
            assert resp.status == status, path
    hub_calls = len(apps_proxied.hub.requests)
    assert all("/hub/api/users" not in r["raw_path"] for r in apps_proxied.hub.requests)
    assert hub_calls == len(apps_proxied.hub.requests)
    async with client.get(f"{apps_proxied.url}/user/alice/lab/x",
                          headers={"Host": ALICE_HOST, **BROWSER}, allow_redirects=False) as r:
        assert r.status == 302  # no cookie: back to the hub's host, which sends a ticket
        assert r.headers["Location"] == "http://localhost:8000/user/alice/lab/x"


async def test_cross_origin_websockets_into_a_workspace_host_are_refused(apps_proxied: Stack,
                                                                        client, signer):
    """A page on a sibling workspace host is same-site: the cookie would be sent."""
    cookie = f"{SECURE_APP_COOKIE}=" + signer.cookie(ALICE_HOST.split(":")[0],
                                                       digest("alice-session"))
    url = f"{apps_proxied.url}/user/alice/lab/ws"
    for origin in (f"http://{BOB_HOST}", "http://localhost:8000", "http://localhost:9999"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(url, headers={"Host": ALICE_HOST, "Cookie": cookie,
                                                  "Origin": origin})
        assert refused.value.status == 403, origin
    async with client.ws_connect(url, headers={"Host": ALICE_HOST, "Cookie": cookie,
                                               "Origin": f"http://{ALICE_HOST}"}) as ws:
        await ws.send_str("hi")
        assert (await ws.receive(timeout=5)).data == "hi"
