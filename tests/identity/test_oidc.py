"""Single sign-on end to end: a real labspace (hub and proxy) and a real OpenID Connect
provider (`oidc-provider` on Node.js, another site: localhost vs 127.0.0.1), driven by
Chromium: the code flow with PKCE, the claims mapped to the account, and the attacks on the
flow (a callback from another browser, a replayed code, a renamed account at the provider,
a local name, a system uid, a group not allowed, a disabled account)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from labspace.testing import Stack
from tests.identity.conftest import OidcProvider, start_provider
from tests.web.chromium import launch

pytestmark = [pytest.mark.browser, pytest.mark.docker]

UID, GID = 54400, 6100


@pytest.fixture(scope="module")
def sso(docker_engine: None,
        oidc_provider_factory: list[OidcProvider]) -> Iterator[tuple[Stack, OidcProvider]]:
    stack = Stack(Path(tempfile.mkdtemp(prefix="labspace-oidc-test-")))
    provider = start_provider(oidc_provider_factory, [f"{stack.url}/hub/oidc/callback"])
    account = provider.set_account
    account("alice", "alice-idp-pw", "sub-alice", preferred_username="alice",
            groups=["/phd", "/gpu"], uid_number=str(UID), gid_number=str(GID))
    account("bob", "bob-idp-pw", "sub-bob", preferred_username="Bob", groups=["/students"])
    account("carol", "carol-idp-pw", "sub-carol", preferred_username="carol",
            groups=["/visitors"])
    # Someone renamed at the provider to another person's name, to a local admin's, with a
    # system uid: none of them may become that account here.
    account("imposter", "imposter-pw", "sub-imposter", preferred_username="alice",
            groups=["/phd"])
    account("fake-admin", "fake-admin-pw", "sub-fake-admin", preferred_username="admin",
            groups=["/phd", "/lab-admins"])
    account("rooty", "rooty-pw", "sub-rooty", preferred_username="rooty", groups=["/phd"],
            uid_number="0")
    stack.extra_env = provider.settings_env(
        LABSPACE_OIDC_PRESET="keycloak",
        LABSPACE_OIDC_SCOPES=json.dumps(["openid", "profile", "groups", "posix"]),
        LABSPACE_OIDC_UID_CLAIM="uid_number", LABSPACE_OIDC_GID_CLAIM="gid_number",
        LABSPACE_OIDC_ALLOWED_GROUPS=json.dumps(["phd", "students"]),
        LABSPACE_OIDC_ADMIN_GROUPS=json.dumps(["lab-admins"]),
        LABSPACE_OIDC_NAME="Lab account")
    try:
        stack.start()
        yield stack, provider
    finally:
        stack.close()


@pytest.fixture
async def browser_contexts() -> AsyncIterator[Any]:
    """A factory of fresh browser profiles (each its own cookies)."""
    async with async_playwright() as playwright:
        browser = await launch(playwright)

        async def new() -> BrowserContext:
            return await browser.new_context()
        try:
            yield new
        finally:
            await browser.close()


async def sign_in_at_provider(page: Page, login: str, password: str) -> None:
    await page.wait_for_selector("#sign-in")
    await page.fill("#login", login)
    await page.fill("#password", password)
    await page.click("#sign-in")


async def start_login(page: Page, stack: Stack, next_path: str = "/hub/") -> None:
    await page.goto(f"{stack.url}/hub/login?next={next_path}")
    await page.click("#single-sign-on")


def user(stack: Stack, name: str) -> dict[str, Any] | None:
    with stack.client() as admin:
        return next((u for u in admin.get("/hub/api/users").json() if u["name"] == name),
                    None)


async def test_the_code_flow_logs_in_with_the_providers_ids_and_groups(
        sso: tuple[Stack, OidcProvider], browser_contexts: Any) -> None:
    stack, provider = sso
    page = await (await browser_contexts()).new_page()
    await start_login(page, stack, "/hub/keys")
    assert page.url.startswith(f"{provider.issuer}/interaction/")
    await sign_in_at_provider(page, "alice", "alice-idp-pw")
    await page.wait_for_url(f"{stack.url}/hub/keys")
    assert "alice" in await page.content()
    alice = user(stack, "alice")
    assert alice is not None and alice["uid"] == UID and not alice["admin"]
    with stack.client() as admin:
        detail = admin.get("/hub/api/users/alice").json()
    assert detail["gid"] == GID and detail["source"] == "oidc"
    assert detail["groups"] == ["gpu", "phd"]


async def test_groups_and_admin_rights_follow_the_provider_at_each_login(
        sso: tuple[Stack, OidcProvider], browser_contexts: Any) -> None:
    stack, provider = sso
    for groups, admin in ((["/students", "/lab-admins"], True), (["/students"], False)):
        provider.set_account("bob", "bob-idp-pw", "sub-bob", preferred_username="Bob",
                             groups=groups)
        page = await (await browser_contexts()).new_page()
        await start_login(page, stack)
        await sign_in_at_provider(page, "bob", "bob-idp-pw")
        await page.wait_for_url(f"{stack.url}/hub/")
        bob = user(stack, "bob")  # the name is normalised: "Bob" is bob
        assert bob is not None and bob["admin"] is admin


@pytest.mark.parametrize(("login", "password", "message"), [
    ("carol", "carol-idp-pw", "not in a group that may use labspace"),
    ("imposter", "imposter-pw", "cannot be used here"),
    ("fake-admin", "fake-admin-pw", "cannot be used here"),
    ("rooty", "rooty-pw", "cannot be used here"),
])
async def test_the_provider_cannot_hand_out_a_name_a_uid_or_a_right_that_is_not_its(
        sso: tuple[Stack, OidcProvider], browser_contexts: Any, login: str, password: str,
        message: str) -> None:
    stack, _ = sso
    if login == "imposter":  # the real alice has her account already
        await test_the_code_flow_logs_in_with_the_providers_ids_and_groups(
            sso, browser_contexts)
    context = await browser_contexts()
    page = await context.new_page()
    await start_login(page, stack)
    await sign_in_at_provider(page, login, password)
    await page.wait_for_url(f"{stack.url}/hub/oidc/callback*")
    assert message in await page.inner_text(".alert")
    assert not await _session_cookies(context, stack)
    admin = user(stack, "admin")
    assert admin is not None and admin["uid"] != 0
    assert user(stack, "rooty") is None and user(stack, "carol") is None
    alice = user(stack, "alice")
    assert alice is None or alice["uid"] == UID


async def test_a_disabled_account_cannot_sign_in(
        sso: tuple[Stack, OidcProvider], browser_contexts: Any) -> None:
    stack, _ = sso
    await test_the_code_flow_logs_in_with_the_providers_ids_and_groups(sso, browser_contexts)
    with stack.client() as admin:
        assert admin.post("/hub/api/users/alice/disable").status_code == 200
    try:
        context = await browser_contexts()
        page = await context.new_page()
        await start_login(page, stack)
        await sign_in_at_provider(page, "alice", "alice-idp-pw")
        await page.wait_for_url(f"{stack.url}/hub/oidc/callback*")
        assert "disabled" in await page.inner_text(".alert")
        assert not await _session_cookies(context, stack)
    finally:
        with stack.client() as admin:
            admin.post("/hub/api/users/alice/enable")


async def _callback_of(context: BrowserContext, sso: tuple[Stack, OidcProvider], login: str,
                       password: str) -> str:
    """Sign in at the provider but stop at the redirect back: the callback URL (code and
    state), which an attacker would send to a victim."""
    stack, provider = sso
    page = await context.new_page()
    caught: list[str] = []

    async def hold(route: Any) -> None:
        # Playwright does not route the requests of redirects: follow the provider's two
        # (the form's answer, then its authorization endpoint) by hand, with the browser's
        # cookies, and keep the last Location: the callback.
        answer = await route.fetch(max_redirects=0)
        resume = urljoin(provider.issuer, answer.headers["location"])
        back = await context.request.get(resume, max_redirects=0)
        caught.append(back.headers["location"])
        await route.abort()
    await page.route(lambda url: url.startswith(f"{provider.issuer}/interaction/")
                     and url.endswith("/login"), hold)
    await start_login(page, stack)
    await sign_in_at_provider(page, login, password)
    for _ in range(100):
        if caught:
            return caught[0]
        await page.wait_for_timeout(50)
    raise AssertionError("the provider did not send the browser back")


async def _session_cookies(context: BrowserContext, stack: Stack) -> list[str]:
    return [c["name"] for c in await context.cookies(stack.url) if "session" in c["name"]]


async def test_a_callback_sent_to_another_browser_logs_nobody_in(
        sso: tuple[Stack, OidcProvider], browser_contexts: Any) -> None:
    """Login CSRF: mallory's callback (her code, her state) opened by a victim would log the
    victim into mallory's account; the victim's browser has no pending login, so nothing."""
    stack, _ = sso
    callback = await _callback_of(await browser_contexts(), sso, "bob", "bob-idp-pw")
    victim = await browser_contexts()
    page = await victim.new_page()
    response = await page.goto(callback)
    assert response is not None and response.status == 403
    assert "did not start in this browser" in await page.inner_text(".alert")
    assert not await _session_cookies(victim, stack)


async def test_a_callback_is_redeemed_once_and_only_with_its_own_state(
        sso: tuple[Stack, OidcProvider], browser_contexts: Any) -> None:
    stack, _ = sso
    context = await browser_contexts()
    callback = await _callback_of(context, sso, "bob", "bob-idp-pw")
    pending = await context.cookies(f"{stack.url}/hub/oidc/callback")
    assert [c["name"] for c in pending] == ["labspace-oidc"]
    assert pending[0]["httpOnly"] and pending[0]["path"] == "/hub/oidc/"

    async def open_callback(url: str, cookie: dict[str, Any] | None) -> tuple[int, bool]:
        browser = await browser_contexts()
        if cookie:
            await browser.add_cookies([cookie])
        response = await (await browser.new_page()).goto(url)
        assert response is not None
        return response.status, bool(await _session_cookies(browser, stack))

    # Another state with the pending login's cookie: refused before the code is used.
    assert await open_callback(callback.replace("state=", "state=x"), {**pending[0]}) == (
        401, False)
    # The code and its state with the pending login: logged in, once. The same again (the
    # cookie stolen, the URL replayed) is refused: the provider redeems a code only once.
    assert await open_callback(callback, {**pending[0]}) == (200, True)
    assert (await open_callback(callback, {**pending[0]}))[1] is False


async def test_the_login_page_offers_the_provider_and_keeps_next_on_this_site(
        sso: tuple[Stack, OidcProvider], browser_contexts: Any) -> None:
    stack, _ = sso
    page = await (await browser_contexts()).new_page()
    await page.goto(f"{stack.url}/hub/login?next=https://evil.example/")
    assert await page.inner_text("#single-sign-on") == "Log in with Lab account"
    await page.click("#single-sign-on")
    await sign_in_at_provider(page, "bob", "bob-idp-pw")
    await page.wait_for_url(f"{stack.url}/hub/")


def test_a_provider_that_does_not_answer_gets_a_clear_page(
        sso: tuple[Stack, OidcProvider], tmp_path: Path) -> None:
    """Another labspace pointed at a port where nothing listens."""
    stack = Stack(tmp_path)
    stack.extra_env = {"LABSPACE_OIDC_ISSUER": "http://127.0.0.1:9",
                       "LABSPACE_OIDC_CLIENT_ID": "x", "LABSPACE_OIDC_CLIENT_SECRET": "y"}
    try:
        stack.start()
        answer = httpx.get(f"{stack.url}/hub/oidc/login", headers={"Accept": "text/html"})
        assert answer.status_code == 503 and "did not answer" in answer.text
        assert "Log in with single sign-on" in answer.text
    finally:
        stack.close()
