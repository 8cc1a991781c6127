"""Which client address and scheme a real hub believes: the proxy's word, and only the proxy's.

Observed through the login throttle (it counts failures per address) and through a redirect
the hub builds from the request's own URL (its scheme)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from labspace.config import load_settings
from labspace.hubedge import PROXY_HEADER, proxy_proof
from labspace.testing import Stack, log_in

pytestmark = pytest.mark.docker

HTML = {"Accept": "text/html"}


def fresh_account(stack: Stack) -> str:
    name = f"fwd{uuid.uuid4().hex[:8]}"
    with stack.client() as admin:
        created = admin.post("/hub/api/users", json={"name": name, "password": "right-pw-1"})
        assert created.status_code == 201, created.text
    return name


def guesses(url: str, account: str, headers_of: list[dict[str, str]]) -> list[int]:
    """The status of one wrong login per header set, from one client."""
    codes = []
    with httpx.Client(base_url=url, headers=HTML) as client:
        for headers in headers_of:
            client.headers.update(headers)
            codes.append(log_in(client, account, "wrong").status_code)
    return codes


def proof(stack: Stack) -> str:
    return proxy_proof(load_settings(data_dir=stack.data_dir).signing_key)


@pytest.fixture(scope="module")
def hub_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.hub_port}"


def test_a_forged_forwarded_for_through_the_proxy_changes_nothing(stack: Stack) -> None:
    rotating = [{"X-Forwarded-For": f"10.0.0.{i}", "X-Real-IP": f"10.0.0.{i}",
                 PROXY_HEADER: "forged"} for i in range(6)]
    assert guesses(stack.url, fresh_account(stack), rotating) == [401] * 5 + [429]


def test_forged_headers_straight_at_the_hub_are_not_believed(stack: Stack, hub_url: str) -> None:
    rotating = [{"X-Forwarded-For": f"10.0.1.{i}", "X-Forwarded-Proto": "https"}
                for i in range(3)]
    rotating += [{"X-Forwarded-For": f"10.0.2.{i}", PROXY_HEADER: "0" * 64} for i in range(3)]
    assert guesses(hub_url, fresh_account(stack), rotating) == [401] * 5 + [429]
    with httpx.Client(base_url=hub_url) as client:
        moved = client.get("/hub/api", headers={"X-Forwarded-Proto": "https"})
    assert moved.headers["location"].startswith("http://")


def test_with_the_proxys_proof_the_hub_takes_its_address_and_scheme(stack: Stack,
                                                                      hub_url: str) -> None:
    account = fresh_account(stack)
    vouched = {PROXY_HEADER: proof(stack), "X-Forwarded-For": "203.0.113.5"}
    assert guesses(hub_url, account, [vouched] * 6) == [401] * 5 + [429]
    elsewhere = {**vouched, "X-Forwarded-For": "203.0.113.6"}
    assert guesses(hub_url, account, [elsewhere]) == [401]  # another address: still checked
    with httpx.Client(base_url=hub_url) as client:
        moved = client.get("/hub/api", headers={**vouched, "X-Forwarded-Proto": "https"})
    assert moved.headers["location"].startswith("https://")
