"""The load page in a real browser (Debian's Chromium) through the real proxy and hub:
its numbers change while a workspace burns CPU, without a reload; a member sees only
their own workspace, an admin every one with its owner."""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.async_api import Browser, Page, async_playwright

from labspace.runtime.base import LABEL_INSTANCE, LABEL_OWNER, LABEL_WORKSPACE
from labspace.testing import Stack
from tests.conftest import Person, ensure_running
from tests.web.chromium import launch

pytestmark = [pytest.mark.browser, pytest.mark.docker]

WORKSPACE = "loadburn"


def container_of(stack: Stack, owner: str, name: str) -> str:
    found = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label={LABEL_INSTANCE}={stack.instance}",
         "--filter", f"label={LABEL_OWNER}={owner}",
         "--filter", f"label={LABEL_WORKSPACE}={name}"],
        capture_output=True, text=True, check=True).stdout.split()
    assert len(found) == 1, found
    return found[0]


async def logged_in(browser: Browser, stack: Stack, user: str, password: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{stack.url}/hub/load")
    assert "/hub/login" in page.url
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/hub/load$"))
    return page


def cpu_of(text: str) -> float:
    return float(text.split()[0]) if text and text[0].isdigit() else -1.0


async def test_the_load_page_follows_a_workspace_burning_cpu(
        stack: Stack, people: dict[str, Person]) -> None:
    alice = people["alice"]
    ensure_running(alice, WORKSPACE)
    container = container_of(stack, alice.name, WORKSPACE)
    row = f'[data-workspace="{alice.name}/{WORKSPACE}"] [data-field=cpu]'
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await logged_in(browser, stack, alice.name, alice.password)
            await page.wait_for_selector(row, timeout=30_000)
            assert await page.text_content("[data-field=server-cpu]")
            before = cpu_of(await page.text_content(row) or "")
            updated = await page.get_attribute("#load", "data-updated")
            subprocess.run(["docker", "exec", "-d", container, "timeout", "60", "python3",
                            "-c", "while True: pass"], check=True)
            try:
                # The page updates itself (no reload) until the burn shows.
                await page.wait_for_function(
                    """(selector) => {
                        const cell = document.querySelector(selector);
                        return cell && parseFloat(cell.textContent) >= 30;
                    }""", arg=row, timeout=30_000)
                after = cpu_of(await page.text_content(row) or "")
                assert after >= 30 > before or after > before + 20, (before, after)
                assert await page.get_attribute("#load", "data-updated") != updated
                rows = await page.eval_on_selector_all(
                    "[data-workspace]", "rows => rows.map(r => r.dataset.workspace)")
                assert rows and all(r.startswith(f"{alice.name}/") for r in rows), rows
                assert "Live" in (await page.text_content("#load-status") or "")

                admin = await logged_in(browser, stack, "admin", stack.admin_password)
                await admin.wait_for_selector(row, timeout=30_000)
                owner = await admin.text_content(
                    f'[data-workspace="{alice.name}/{WORKSPACE}"] td')
                assert owner == alice.name
            finally:
                subprocess.run(["docker", "exec", container, "pkill", "-f", "while True"],
                               capture_output=True, check=False)
        finally:
            await browser.close()
    with alice.api() as api:
        api.post(f"/hub/api/workspaces/{alice.name}/{WORKSPACE}/stop")
