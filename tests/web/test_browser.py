"""A real browser (Debian's Chromium, driven by Playwright) from login to JupyterLab.

With LABSPACE_UPDATE_SCREENSHOTS=1 it also refreshes the README's screenshots:
docs/screenshot.png (JupyterLab opened through labspace) and docs/screenshot-workspaces.png
(the "My workspaces" page). Otherwise they go to the test's temporary directory, so a test run
never changes the work tree.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from labspace.testing import Stack
from tests.web.chromium import launch

pytestmark = [pytest.mark.browser, pytest.mark.docker]

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("LABSPACE_UPDATE_SCREENSHOTS") == "1" else tmp_path


async def tidy_jupyterlab(page: Page) -> None:
    """Let the launcher finish drawing and dismiss the "Jupyter news?" toast, for a clean
    screenshot; neither is part of what the test checks."""
    try:
        await page.wait_for_selector(".jp-LauncherCard", timeout=15_000)
        await page.get_by_role("button", name="No", exact=True).click(timeout=8_000)
    except PlaywrightTimeout:
        pass
    await page.wait_for_timeout(800)


async def test_login_create_and_land_on_jupyterlab(stack: Stack, shots: Path) -> None:
    user, password = f"ada-{uuid.uuid4().hex[:4]}", "ada-browser-pw-1"
    with stack.client() as admin:
        made = admin.post("/hub/api/users", json={"name": user, "password": password})
        assert made.status_code == 201, made.text
    DOCS.mkdir(exist_ok=True)

    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            visited: list[str] = []
            page.on("framenavigated",
                    lambda frame: visited.append(frame.url) if frame == page.main_frame else None)

            # Anonymous: sent to the login page, which brings us back afterwards.
            await page.goto(f"{stack.url}/hub/")
            assert "/hub/login?next=/hub/" in page.url
            await page.fill("input[name=username]", user)
            await page.fill("input[name=password]", password)
            await page.click("button:has-text('Log in')")
            await page.wait_for_url(f"{stack.url}/hub/")
            assert await page.locator("h1").inner_text() == "My workspaces"

            # Create "analysis" from the JupyterLab template with the form.
            await page.fill("input[name=name]", "analysis")
            await page.select_option("select[name=template]", label="JupyterLab")
            await page.click("button:has-text('Create and start')")

            # The progress view, streaming steps, then JupyterLab by itself.
            await page.wait_for_url(re.compile(rf"/hub/workspaces/{user}/analysis\?launch=1$"),
                                    wait_until="commit")
            await page.wait_for_url(re.compile(rf"/user/{user}/analysis/lab"), timeout=60_000)
            await page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
            await page.wait_for_function("document.title.includes('JupyterLab')",
                                         timeout=60_000)
            await tidy_jupyterlab(page)
            assert any(re.search(rf"/hub/workspaces/{user}/analysis", url) for url in visited)
            await page.screenshot(path=str(shots / "screenshot.png"))

            # Back on "My workspaces": analysis is running, with an Open link.
            await page.goto(f"{stack.url}/hub/")
            row = page.locator("tr", has_text="analysis")
            assert await row.locator(".badge").inner_text() == "running"
            assert await row.locator("a:has-text('Open')").get_attribute("href") == \
                f"/user/{user}/analysis/"
            await page.screenshot(path=str(shots / "screenshot-workspaces.png"))
        finally:
            await browser.close()
            with stack.client() as admin:
                admin.delete(f"/hub/api/workspaces/{user}/analysis")
