"""Claims culled for real (issue 10): the real proxy and hub, real JupyterLab containers.

Two claims of an app that ends a claim after 10 s without use and after a minute whatever
happens. Both browsers open a kernel over a WebSocket through the proxy. One then runs code on
it every few seconds (an active WebSocket: use); the other keeps its WebSocket open and
silent (an open, idle tab). The silent claim ends as idle; the active one lives past the idle
timeout and ends at its maximum age. An ended claim's URL says so, and its container is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import aiohttp
import httpx
import pytest

from labspace.testing import Stack
from tests.apps.test_claims_stack import ready_spares
from tests.jupyter import open_kernel, run_code

pytestmark = [pytest.mark.docker]

IDLE_S, MAX_AGE_S = 10, 60  # the least PoolSettings allows for each
EVERY_S = 3.0


async def _claim(stack: Stack, name: str) -> tuple[aiohttp.ClientSession, str]:
    """A new browser opens the link: (the browser, the claim's base URL)."""
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                    headers={"Accept": "text/html"})
    async with browser.get(f"{stack.url}/apps/{name}", allow_redirects=False) as first:
        assert first.status == 303
        check = first.headers["location"]
    async with browser.get(stack.url + check, allow_redirects=False) as claimed:
        assert claimed.status == 303, await claimed.text()
        location = claimed.headers["location"]
    assert location.endswith("/lab"), location
    return browser, stack.url + location.removesuffix("lab")


def _ended(admin: httpx.Client, name: str) -> dict[str, int]:
    return dict(admin.get(f"/hub/api/apps/{name}").json()["pool"]["ended_since_start"])


async def _page(browser: aiohttp.ClientSession, base: str) -> tuple[int, str]:
    async with browser.get(base + "lab") as page:
        return page.status, await page.text()


async def test_an_idle_claim_ends_an_active_one_lives_until_its_max_age(stack: Stack) -> None:
    name = f"cull{uuid.uuid4().hex[:5]}"
    headers = {"Origin": stack.url}
    with stack.client() as admin:
        made = admin.post("/hub/api/apps", json={
            "name": name, "template": "jupyterlab", "path": "lab",
            "pool": {"spares": 2, "max_claimed": 4, "idle_timeout": IDLE_S,
                     "max_age": MAX_AGE_S}})
        assert made.status_code == 201, made.text
        try:
            ready_spares(admin, name, 2)
            (active, active_base), (idle, idle_base) = [await _claim(stack, name)
                                                        for _ in range(2)]
            try:
                claimed_at = time.monotonic()
                busy = await open_kernel(active, active_base, headers)
                silent = await open_kernel(idle, idle_base, headers)
                # The silent one: its WebSocket stays open with no frame; the active one runs
                # code every few seconds, until the silent one is culled (bounded).
                while "idle" not in _ended(admin, name):
                    assert time.monotonic() - claimed_at < IDLE_S + 40, _ended(admin, name)
                    assert await run_code(busy, "1 + 1", timeout=30) == "2"
                    await asyncio.sleep(EVERY_S)
                assert time.monotonic() - claimed_at >= IDLE_S
                status, text = await _page(idle, idle_base)
                assert status == 404 and "Session ended" in text
                # Past the idle timeout, the active claim lives on: its WebSocket's frames are
                # use. It ends at its maximum age, active or not.
                assert await run_code(busy, "2 + 2", timeout=30) == "4"
                assert (await _page(active, active_base))[0] == 200
                while "max age" not in _ended(admin, name):
                    assert time.monotonic() - claimed_at < MAX_AGE_S + 40, _ended(admin, name)
                    with contextlib.suppress(AssertionError, TimeoutError, aiohttp.ClientError):
                        # in use until the end; the claim ending closes the channel under it
                        assert await run_code(busy, "3 + 3", timeout=10) == "6"
                    await asyncio.sleep(EVERY_S)
                assert time.monotonic() - claimed_at >= MAX_AGE_S
                status, text = await _page(active, active_base)
                assert status == 404 and "Session ended" in text
                await busy.close()
                await silent.close()
            finally:
                await active.close()
                await idle.close()
            assert _ended(admin, name) == {"idle": 1, "max age": 1}
            assert admin.get(f"/hub/api/apps/{name}").json()["pool"]["claimed"] == 0
        finally:
            admin.delete(f"/hub/api/apps/{name}")
