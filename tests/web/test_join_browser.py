"""A workshop card's link in a real browser (Debian's Chromium) through the real proxy and
hub: one click logs the attendee in and lands in the workshop's JupyterLab; the token, which
rides in the URL fragment, reaches no log; a forged or reset link logs nobody in."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, async_playwright

from labspace.testing import Stack
from tests.web.chromium import launch

pytestmark = [pytest.mark.browser, pytest.mark.docker]


async def session_cookies(browser: Browser, url: str) -> list[str]:
    """Open ``url`` in a fresh browser; the labspace session cookies it ends with."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector("[role=alert]", timeout=15_000)
        return [c["name"] for c in await context.cookies() if c["name"].startswith("labspace")
                and "session" in c["name"]]
    finally:
        await context.close()


async def test_a_card_link_opens_the_workshop_in_a_browser(stack: Stack) -> None:
    workshop = f"ws{uuid.uuid4().hex[:5]}"
    with stack.client() as admin:
        made = admin.post("/hub/api/workshops", json={
            "name": workshop, "seats": 2, "expires": "1d", "template": "jupyterlab"})
        assert made.status_code == 201, made.text
        first, second = admin.get(f"/hub/api/workshops/{workshop}/cards").json()
    token = first["login_url"].split("#", 1)[1]
    link = first["login_url"].replace(first["login_url"].split("/hub/")[0], stack.url)
    try:
        async with async_playwright() as playwright:
            browser = await launch(playwright)
            try:
                context = await browser.new_context()
                page = await context.new_page()
                await page.goto(link)
                await page.wait_for_url(
                    re.compile(rf"/user/{first['user']}/jupyterlab/lab"), timeout=90_000)
                await page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
                assert page.url.startswith(stack.url) and token not in page.url
                await context.close()

                # Reset the second attendee: their old link now logs nobody in.
                with stack.client() as admin:
                    reset = admin.post(
                        f"/hub/api/workshops/{workshop}/attendees/{second['user']}/reset")
                    assert reset.status_code == 200, reset.text
                old = second["login_url"].replace(second["login_url"].split("/hub/")[0],
                                                  stack.url)
                assert await session_cookies(browser, old) == []
                forged = f"{stack.url}/hub/join#{token[:-4]}AAAA"
                assert await session_cookies(browser, forged) == []
            finally:
                await browser.close()
        assert token not in stack.logs()  # the fragment never leaves the browser
    finally:
        with stack.client() as admin:
            admin.delete(f"/hub/api/workshops/{workshop}")
        with stack.client() as admin:
            assert admin.get(f"/hub/api/users?workshop={workshop}").json() == []
