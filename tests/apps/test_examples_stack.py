"""The two example apps as a visitor meets them: added through the API, claimed by opening
the link, served through the real proxy and hub, and gone when the app is deleted."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from labspace.apps.examples import EXAMPLES
from labspace.testing import Stack
from tests.apps.test_claims_stack import ready_spares

pytestmark = [pytest.mark.docker]


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_an_example_app_is_ready_on_click(stack: Stack, example: str) -> None:
    name = f"{example}{uuid.uuid4().hex[:5]}"
    definition = EXAMPLES[example].model_dump(mode="json")
    definition.update(name=name, pool={**definition["pool"], "spares": 1})
    with stack.client() as admin:
        made = admin.post("/hub/api/apps", json=definition)
        assert made.status_code == 201, made.text
        try:
            ready_spares(admin, name, 1)
            with httpx.Client(base_url=stack.url, timeout=30, follow_redirects=True,
                              headers={"Accept": "text/html"}) as browser:
                page = browser.get(f"/apps/{name}")
            assert page.status_code == 200, page.text[:300]
            assert re.fullmatch(rf"/apps/{name}/c[0-9a-f]{{16}}/{EXAMPLES[example].path}",
                                page.url.path), page.url
            if example == "notebook":
                assert "jupyter-config-data" in page.text
            else:
                assert 'data-primes="1229"' in page.text and "<svg" in page.text
        finally:
            assert admin.delete(f"/hub/api/apps/{name}").status_code == 204
    deadline = time.monotonic() + 60
    while [c for c in stack.containers() if name in c]:
        assert time.monotonic() < deadline, stack.containers()
        time.sleep(0.5)
