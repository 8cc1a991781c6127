"""Instant-app claims on hosts of their own (apps_domain), attacked as a visitor would.

With apps_domain, a claim lives on ``<slot>.<apps_domain>`` under the path its container was
started with; a browser enters with the hub's one-time ticket, exchanged for a cookie of that
host alone. Without apps_domain (path mode) nothing changes: the path-scoped claim cookie.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import aiohttp
import pytest

from labspace.config import load_settings
from labspace.identity.credentials import digest
from labspace.identity.hostauth import SECURE_CLAIM_COOKIE, HostSigner
from labspace.proxy.source import ClaimRoute
from tests.proxy.conftest import APPS_DOMAIN, SECRET, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

SLOT = "c0123456789abcdef"
OTHER = "cfedcba9876543210"
DEMO = "c00000000000000aa"
TOKEN, OTHER_TOKEN = "ada-claim-token-0123456789", "bob-claim-token-0123456789"
HOST = f"{SLOT}.{APPS_DOMAIN}"
OTHER_HOST = f"{OTHER}.{APPS_DOMAIN}"
DEMO_HOST = f"{DEMO}.{APPS_DOMAIN}"
PATH = f"/apps/intro/{SLOT}/lab/tree"
BROWSER = {"Accept": "text/html"}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def claim(stack: Stack, app: str, slot: str, token: str, shareable: bool = False) -> ClaimRoute:
    return ClaimRoute(app=app, slot=slot, target=stack.upstream_url, claim_digest=sha(token),
                      shareable=shareable, secret_value=SECRET)


@pytest.fixture(scope="module", autouse=True)
def claims(proxied: Stack, apps_proxied: Stack) -> None:
    for stack in (proxied, apps_proxied):
        stack.source.claims.update({
            ("intro", SLOT): claim(stack, "intro", SLOT, TOKEN),
            ("intro", OTHER): claim(stack, "intro", OTHER, OTHER_TOKEN),
            ("demo", DEMO): claim(stack, "demo", DEMO, "demo-token-0123456789", True),
        })


@pytest.fixture(scope="module")
def signer(proxy_data_dir: Path) -> HostSigner:
    """Signs as the hub of these proxies would (same data directory, same key)."""
    return HostSigner(load_settings(data_dir=proxy_data_dir).signing_key())


def on(host: str, **headers: str) -> dict[str, str]:
    return {"Host": f"{host}:8000", **headers}


async def redeem(stack: Stack, client: aiohttp.ClientSession, host: str, ticket: str,
                 next_path: str = PATH) -> aiohttp.ClientResponse:
    async with client.get(f"{stack.url}/_labspace/claim",
                          params={"ticket": ticket, "next": next_path},
                          headers=on(host, **BROWSER), allow_redirects=False) as resp:
        await resp.read()
        return resp


async def host_cookie(stack: Stack, client: aiohttp.ClientSession, signer: HostSigner,
                      host: str = HOST, app: str = "intro", token: str = TOKEN) -> str:
    resp = await redeem(stack, client, host, signer.claim_ticket(host, app, sha(token)),
                        f"/apps/{app}/{host.split('.')[0]}/")
    assert resp.status == 302, await resp.text()
    return resp.headers["Set-Cookie"].split(";")[0]


# ------------------------------------------------------------------ host mode


async def test_a_ticket_becomes_this_hosts_claim_cookie_once(apps_proxied: Stack, client,
                                                             signer):
    ticket = signer.claim_ticket(HOST, "intro", sha(TOKEN))
    resp = await redeem(apps_proxied, client, HOST, ticket)
    assert resp.status == 302 and resp.headers["Location"] == PATH
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    set_cookie = resp.headers["Set-Cookie"]
    assert set_cookie.startswith(SECURE_CLAIM_COOKIE + "=")
    attributes = [part.strip().lower() for part in set_cookie.split(";")[1:]]
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= set(attributes)
    assert not any(part.startswith("domain") for part in attributes)  # this host alone
    assert TOKEN not in set_cookie and sha(TOKEN) not in set_cookie  # signed, not the token
    again = await redeem(apps_proxied, client, HOST, ticket)
    assert again.status == 403  # single use
    cookie = set_cookie.split(";")[0]
    # The hub's session cookie is not needed, and never reaches the app.
    headers = on(HOST, Cookie=f"{cookie}; labspace-session=alice-session; theme=x")
    async with client.get(f"{apps_proxied.url}{PATH}", headers=headers) as ok:
        assert ok.status == 200 and (await ok.json())["raw_path"] == PATH
    seen = apps_proxied.upstream.last
    assert seen["raw_path"] == PATH  # the container's own base URL, as in path mode
    assert seen["headers"].get("Cookie") == "theme=x"
    assert seen["headers"]["Authorization"] == SECRET


async def test_refused_tickets(apps_proxied: Stack, client, signer):
    forged = HostSigner("not-the-hubs-key-" + "x" * 32)
    bad = {
        "another host's": signer.claim_ticket(OTHER_HOST, "intro", sha(TOKEN)),
        "expired": signer.claim_ticket(HOST, "intro", sha(TOKEN), now=time.time() - 120),
        "forged": forged.claim_ticket(HOST, "intro", sha(TOKEN)),
        "a workspace's": signer.ticket(HOST, digest("alice-session")),
        "an older token's": signer.claim_ticket(HOST, "intro", sha("a-token-it-had-before")),
        "empty": "",
        "garbage": "x" * 5000,
    }
    for what, ticket in bad.items():
        resp = await redeem(apps_proxied, client, HOST, ticket)
        assert resp.status == 403, what
        assert "Set-Cookie" not in resp.headers, what
    # Nor does a claim ticket open a workspace's host.
    async with client.get(f"{apps_proxied.url}/_labspace/auth",
                          params={"ticket": signer.claim_ticket(HOST, "intro", sha(TOKEN))},
                          headers=on(f"lab--alice.{APPS_DOMAIN}"),
                          allow_redirects=False) as resp:
        assert resp.status == 403 and "Set-Cookie" not in resp.headers


async def test_next_stays_on_this_claims_path(apps_proxied: Stack, client, signer):
    for target in ("https://evil.example/", "//evil.example/x", f"/apps/intro/{OTHER}/",
                   "/hub/api/users", f"/apps/intro/{SLOT}/\\evil", ""):
        ticket = signer.claim_ticket(HOST, "intro", sha(TOKEN))
        resp = await redeem(apps_proxied, client, HOST, ticket, target)
        assert resp.status == 302 and resp.headers["Location"] == f"/apps/intro/{SLOT}/", target


async def test_a_claim_hosts_cookie_opens_no_other_claim(apps_proxied: Stack, client, signer):
    cookie = await host_cookie(apps_proxied, client, signer)
    other_path = f"/apps/intro/{OTHER}/lab"
    async with client.get(f"{apps_proxied.url}{other_path}",
                          headers=on(OTHER_HOST, Cookie=cookie, **BROWSER)) as resp:
        assert resp.status == 403 and "another browser" in (await resp.text()).lower()
    # Not even re-signed for the other host with this claim's digest: not that claim's.
    moved = f"{SECURE_CLAIM_COOKIE}=" + signer.claim_cookie(OTHER_HOST, sha(TOKEN))
    async with client.get(f"{apps_proxied.url}{other_path}",
                          headers=on(OTHER_HOST, Cookie=moved)) as resp:
        assert resp.status == 403
    # A cookie for the other host, carried here, is refused here.
    theirs = f"{SECURE_CLAIM_COOKIE}=" + signer.claim_cookie(OTHER_HOST, sha(OTHER_TOKEN))
    async with client.get(f"{apps_proxied.url}{PATH}", headers=on(HOST, Cookie=theirs)) as r:
        assert r.status == 403


async def test_a_copied_claim_url_opens_nothing_elsewhere(apps_proxied: Stack, client):
    seen = len(apps_proxied.upstream.requests)
    for cookie in (None, "labspace-session=alice-session",  # the hub's session: no use
                   f"labspace-claim={TOKEN}",  # the path-mode cookie, its very token
                   f"{SECURE_CLAIM_COOKIE}={TOKEN}",
                   f"{SECURE_CLAIM_COOKIE}=forged.value"):
        headers = on(HOST, **BROWSER) if cookie is None else on(HOST, Cookie=cookie, **BROWSER)
        async with client.get(f"{apps_proxied.url}{PATH}", headers=headers) as resp:
            assert resp.status == 403, cookie
            page = await resp.text()
        assert "another browser" in page.lower()
        assert 'href="http://localhost:8000/apps/intro"' in page  # the hub's link
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"{apps_proxied.url}/apps/intro/{SLOT}/ws", headers=on(HOST))
    assert refused.value.status == 403
    assert len(apps_proxied.upstream.requests) == seen


async def test_a_claim_host_serves_its_claim_only(apps_proxied: Stack, client, signer):
    cookie = await host_cookie(apps_proxied, client, signer)
    hub_seen = len(apps_proxied.hub.requests)
    for path in ("/hub/api/users", "/hub/", "/hub/login", "/", f"/apps/intro/{OTHER}/lab",
                 "/apps/intro", "/apps/intro/", "/user/alice/lab/api/json",
                 f"/apps/demo/{SLOT}/", "/_labspace/auth?ticket=x"):
        async with client.get(f"{apps_proxied.url}{path}", headers=on(HOST, Cookie=cookie),
                              allow_redirects=False) as resp:
            assert resp.status in (403, 404), path
    assert len(apps_proxied.hub.requests) == hub_seen  # never forwarded to the hub


async def test_only_its_own_pages_change_a_claim(apps_proxied: Stack, client, signer):
    cookie = await host_cookie(apps_proxied, client, signer)
    url = f"{apps_proxied.url}/apps/intro/{SLOT}/api/json"
    for origin in ("http://localhost:8000", f"http://{OTHER_HOST}:8000", "null", None):
        headers = on(HOST, Cookie=cookie)
        if origin:
            headers["Origin"] = origin
        async with client.post(url, headers=headers, data=b"x") as resp:
            assert resp.status == 403, origin
    async with client.post(url, headers=on(HOST, Cookie=cookie, Origin=f"http://{HOST}:8000"),
                           data=b"x") as resp:
        assert resp.status == 200
    ws = await client.ws_connect(f"{apps_proxied.url}/apps/intro/{SLOT}/ws",
                                 headers=on(HOST, Cookie=cookie, Origin=f"http://{HOST}:8000"))
    await ws.send_str("ping")
    assert (await ws.receive()).data == "ping"
    await ws.close()


async def test_a_shareable_app_lets_anyone_in_on_its_host(apps_proxied: Stack, client):
    async with client.get(f"{apps_proxied.url}/apps/demo/{DEMO}/", headers=on(DEMO_HOST)) as r:
        assert r.status == 200


async def test_the_hubs_origin_sends_claims_to_their_own_host(apps_proxied: Stack, client):
    seen = len(apps_proxied.upstream.requests)
    for slot, app in ((SLOT, "intro"), (DEMO, "demo")):
        path = f"/apps/{app}/{slot}/lab?x=1"
        async with client.get(f"{apps_proxied.url}{path}", headers={"Cookie": f"labspace-claim"
                                                                    f"={TOKEN}"},
                              allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == f"http://{slot}.{APPS_DOMAIN}:8000{path}"
        async with client.post(f"{apps_proxied.url}{path}",
                               headers={"Origin": "http://localhost:8000"}) as resp:
            assert resp.status == 403
    assert len(apps_proxied.upstream.requests) == seen  # no app page on the hub's origin
    async with client.get(f"{apps_proxied.url}/apps/intro", allow_redirects=False) as resp:
        assert (await resp.json())["hub"] is True  # the link itself is the hub's


async def test_a_new_token_for_the_same_browser_is_read_afresh(apps_proxied: Stack, client,
                                                               signer):
    """The link opened again hands the claim a new token: the proxy's cached claim is older,
    yet the new ticket works at once, and the old cookie no longer does."""
    slot, token = "c1111111111111111", "first-token-0123456789"
    host, path = f"{slot}.{APPS_DOMAIN}", f"/apps/intro/{slot}/"
    apps_proxied.source.claims[("intro", slot)] = claim(apps_proxied, "intro", slot, token)
    old = await host_cookie(apps_proxied, client, signer, host, token=token)
    async with client.get(f"{apps_proxied.url}{path}", headers=on(host, Cookie=old)) as resp:
        assert resp.status == 200  # cached now, with the first digest
    apps_proxied.source.claims[("intro", slot)] = claim(apps_proxied, "intro", slot, "second")
    new = await host_cookie(apps_proxied, client, signer, host, token="second")
    async with client.get(f"{apps_proxied.url}{path}", headers=on(host, Cookie=new)) as resp:
        assert resp.status == 200
    async with client.get(f"{apps_proxied.url}{path}", headers=on(host, Cookie=old)) as resp:
        assert resp.status == 403


async def test_an_ended_claim_says_so_on_its_host(apps_proxied: Stack, client, signer):
    slot = "c2222222222222222"
    host = f"{slot}.{APPS_DOMAIN}"
    resp = await redeem(apps_proxied, client, host,
                        signer.claim_ticket(host, "intro", sha(TOKEN)), f"/apps/intro/{slot}/")
    assert resp.status == 404 and "Set-Cookie" not in resp.headers
    async with client.get(f"{apps_proxied.url}/apps/intro/{slot}/", headers=on(host)) as resp:
        assert resp.status == 404


async def test_workspace_hosts_are_unchanged(apps_proxied: Stack, client, signer):
    host = f"lab--alice.{APPS_DOMAIN}"
    cookie = "__Host-labspace-app=" + signer.cookie(host, digest("alice-session"))
    async with client.get(f"{apps_proxied.url}/user/alice/lab/api/json",
                          headers=on(host, Cookie=cookie)) as resp:
        assert resp.status == 200
    async with client.get(f"{apps_proxied.url}/apps/intro/{SLOT}/",
                          headers=on(host, Cookie=cookie)) as resp:
        assert resp.status == 404  # a workspace host serves no claim


# ------------------------------------------------------------------ path mode


async def test_path_mode_is_unchanged(proxied: Stack, client, signer):
    url = f"{proxied.url}{PATH}"
    async with client.get(url, headers={"Cookie": f"labspace-claim={TOKEN}"}) as resp:
        assert resp.status == 200 and (await resp.json())["raw_path"] == PATH
    async with client.get(url, headers={"Cookie": f"labspace-claim={OTHER_TOKEN}"}) as resp:
        assert resp.status == 403
    async with client.get(url, allow_redirects=False) as resp:
        assert resp.status == 403
    # No claim hosts without apps_domain: the host name means nothing to the proxy.
    ticket = signer.claim_ticket(HOST, "intro", sha(TOKEN))
    async with client.get(f"{proxied.url}/_labspace/claim", params={"ticket": ticket},
                          headers=on(HOST), allow_redirects=False) as resp:
        assert resp.status == 404 and "Set-Cookie" not in resp.headers
