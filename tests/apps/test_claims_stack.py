"""A claim through the real proxy and hub, with real JupyterLab containers: the link lands in
a running app, each browser gets a fresh container of its own, a copied claim URL opens
nothing elsewhere, and deleting the app leaves no container."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from labspace.testing import Stack

pytestmark = [pytest.mark.docker]


def ready_spares(admin: httpx.Client, name: str, want: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while (pool := admin.get(f"/hub/api/apps/{name}").json()["pool"])["ready"] < want:
        assert time.monotonic() < deadline, pool
        time.sleep(0.5)


def claim(stack: Stack, name: str) -> tuple[httpx.Client, str]:
    """A new browser opens the link: (the browser, the claim's URL path)."""
    browser = httpx.Client(base_url=stack.url, timeout=30, headers={"Accept": "text/html"})
    first = browser.get(f"/apps/{name}")
    assert first.status_code == 303 and first.headers["location"] == f"/apps/{name}?cookies=1"
    claimed = browser.get(first.headers["location"])
    assert claimed.status_code == 303, claimed.text[:300]
    location = claimed.headers["location"]
    assert re.fullmatch(rf"/apps/{name}/c[0-9a-f]{{16}}/lab", location), location
    return browser, location


def test_a_claim_lands_in_a_fresh_app_for_its_browser_only(stack: Stack) -> None:
    name = f"intro{uuid.uuid4().hex[:5]}"
    with stack.client() as admin:
        made = admin.post("/hub/api/apps", json={
            "name": name, "template": "jupyterlab", "path": "lab",
            "pool": {"spares": 1, "max_claimed": 5}})
        assert made.status_code == 201, made.text
        try:
            ready_spares(admin, name, 1)
            ada, ada_url = claim(stack, name)
            began = time.perf_counter()
            page = ada.get(ada_url)
            assert page.status_code == 200, page.text[:300]
            assert "JupyterLab" in page.text
            print(f"first byte of the claimed app in {1000 * (time.perf_counter() - began):.0f} ms")
            # A copied link: another browser without the claim's cookie gets nothing of it.
            stranger = httpx.Client(base_url=stack.url, timeout=30,
                                    headers={"Accept": "text/html"})
            refused = stranger.get(ada_url)
            assert refused.status_code == 403 and "another browser" in refused.text.lower()
            # The link again in the same browser: back to its own claim.
            again = ada.get(f"/apps/{name}")
            assert again.status_code == 303 and again.headers["location"] == ada_url
            # Another browser: a container of its own, never the first one's.
            ready_spares(admin, name, 1)
            bob, bob_url = claim(stack, name)
            assert bob_url.split("/")[3] != ada_url.split("/")[3]
            assert bob.get(bob_url).status_code == 200
            pool = admin.get(f"/hub/api/apps/{name}").json()["pool"]
            assert pool["claimed"] == 2 and pool["claims"] == 2
        finally:
            assert admin.delete(f"/hub/api/apps/{name}").status_code == 204
    deadline = time.monotonic() + 60
    while [c for c in stack.containers() if name in c]:
        assert time.monotonic() < deadline, stack.containers()
        time.sleep(0.5)
