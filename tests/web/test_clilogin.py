"""`labspace login`'s device flow on the hub, in-process: a code is approved only by a
logged-in user who confirms it, its token is handed out once and carries no admin powers,
and the flow cannot be used to flood the hub or guess codes."""

from __future__ import annotations

import re

import httpx

from labspace.identity.devicelogin import MAX_PENDING_PER_ADDRESS, MAX_WRONG_CODES
from labspace.identity.tokens import issue_token
from labspace.testing import FakeRuntime
from tests.web.conftest import hub_of

HTML = {"Accept": "text/html"}


async def _begin(client: httpx.AsyncClient) -> dict[str, str]:
    started = await client.post("/hub/api/cli-logins", json={"client": "ada@laptop"},
                                headers={"Authorization": ""})
    assert started.status_code == 201, started.text
    body: dict[str, str] = started.json()
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", body["user_code"])
    assert body["verification_uri_complete"].endswith(f"/hub/cli-login?code={body['user_code']}")
    return body


async def _poll(client: httpx.AsyncClient, device_code: str) -> httpx.Response:
    return await client.post("/hub/api/cli-logins/token", json={"device_code": device_code},
                             headers={"Authorization": ""})


async def _decide(client: httpx.AsyncClient, code: str, decision: str) -> httpx.Response:
    return await client.post("/hub/cli-login", data={"code": code, "decision": decision},
                             headers=HTML)


async def test_an_approved_login_hands_out_one_scoped_token_once(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    flow = await _begin(client)
    pending = await _poll(client, flow["device_code"])
    assert (pending.status_code, pending.json()["error"]) == (400, "authorization_pending")
    shown = await _decide(client, flow["user_code"].lower().replace("-", ""), "continue")
    assert shown.status_code == 200 and "ada@laptop" in shown.text and "Approve" in shown.text
    assert (await _poll(client, flow["device_code"])).json()["error"] == "authorization_pending"
    done = await _decide(client, flow["user_code"], "approve")
    assert "is logged in as" in done.text
    granted = await _poll(client, flow["device_code"])
    assert granted.status_code == 200 and granted.json()["user"] == "ada"
    again = await _poll(client, flow["device_code"])
    assert again.json()["error"] == "expired_token"  # handed out once
    token = granted.json()["token"]
    async with httpx.AsyncClient(transport=client._transport, base_url="http://hub",
                                 headers={"Authorization": f"Bearer {token}"}) as cli:
        assert (await cli.get("/hub/api/workspaces")).status_code == 200
        # ada is an administrator, but not through a laptop's token
        assert (await cli.get("/hub/api/users")).status_code == 403
        made = await cli.post("/hub/api/users", json={"name": "mallory"})
        assert made.status_code == 403
        listed = (await cli.get("/hub/api/tokens")).json()
        assert [t["kind"] for t in listed if t["current"]] == ["cli"]
        assert [t["expires_at"] is not None for t in listed if t["current"]] == [True]


async def test_a_denied_or_unknown_login_gets_no_token(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    flow = await _begin(client)
    await _decide(client, flow["user_code"], "deny")
    refused = await _poll(client, flow["device_code"])
    assert (refused.status_code, refused.json()["error"]) == (400, "access_denied")
    assert (await _poll(client, "made-up")).json()["error"] == "expired_token"
    approve_twice = await _decide(client, flow["user_code"], "approve")
    assert approve_twice.status_code == 404


async def test_guessing_codes_is_throttled_per_account(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    flow = await _begin(client)
    for _ in range(MAX_WRONG_CODES):
        assert (await _decide(client, "BBBB-BBBB", "continue")).status_code == 404
    locked = await _decide(client, flow["user_code"], "approve")
    assert locked.status_code == 429  # even the right code, until the window passes
    assert (await _poll(client, flow["device_code"])).json()["error"] == "authorization_pending"


async def test_one_client_cannot_fill_the_table_of_pending_logins(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    for _ in range(MAX_PENDING_PER_ADDRESS):
        await _begin(client)
    flooded = await client.post("/hub/api/cli-logins", json={})
    assert flooded.status_code == 429


async def test_an_expired_login_is_forgotten(api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    flow = await _begin(client)
    logins = hub_of(client).device_logins
    for pending in logins._by_device.values():
        pending.expires = 0.0  # ten minutes later
    assert (await _poll(client, flow["device_code"])).json()["error"] == "expired_token"
    assert (await _decide(client, flow["user_code"], "approve")).status_code == 404


async def test_the_page_asks_for_a_login_first_and_comes_back_with_the_code(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    page = await client.get("/hub/cli-login?code=BCDF-GHJK",
                            headers={**HTML, "Authorization": ""})
    assert page.status_code == 303
    assert page.headers["location"] == "/hub/login?next=/hub/cli-login%3Fcode%3DBCDF-GHJK"


async def test_a_browser_session_approves_only_from_its_own_page(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    """With a session cookie, as a browser: a post from another origin, or with a forged
    CSRF token, approves nothing."""
    client, _ = api
    hub = hub_of(client)
    user = await hub.users.get("ada")
    async with hub.db.session() as session:
        cookie = await issue_token(session, user, kind="session", max_age=3600)
    flow = await _begin(client)
    async with httpx.AsyncClient(transport=client._transport, base_url="http://hub",
                                 cookies={hub.settings.session_cookie: cookie},
                                 headers={**HTML, "Origin": "http://hub"}) as browser:
        page = await browser.get("/hub/cli-login")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf
        data = {"code": flow["user_code"], "decision": "approve", "_csrf": csrf.group(1)}
        elsewhere = await browser.post("/hub/cli-login", data=data,
                                       headers={"Origin": "http://evil.localhost"})
        assert elsewhere.status_code == 403
        forged = await browser.post("/hub/cli-login", data={**data, "_csrf": "forged"})
        assert forged.status_code == 403
        assert (await _poll(client, flow["device_code"])).json()["error"] == \
            "authorization_pending"
        approved = await browser.post("/hub/cli-login", data=data)  # its own page: works
        assert "is logged in as" in approved.text
