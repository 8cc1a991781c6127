"""/hub/metrics on the real processes (labspace.testing.Stack): the scrape goes through the
public proxy to the hub, which appends what the proxy answers on its control socket; the
proxy's counters move with real requests; nothing of it is served on the public port, and
members and strangers are refused through the same path Prometheus takes."""

from __future__ import annotations

from contextlib import closing

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from labspace.testing import Stack
from tests.conftest import Person

pytestmark = [pytest.mark.docker]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/hub/metrics")
    assert response.status_code == 200, response.text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def requests(found: Samples, kind: str, code: str) -> float:
    return found[("labspace_proxy_requests_total", frozenset({("kind", kind), ("code", code)}))]


def test_one_scrape_has_the_hub_and_the_proxy(stack: Stack) -> None:
    with stack.client() as admin, httpx.Client(base_url=stack.url, timeout=30) as anyone:
        before = scrape(admin)
        assert before[("labspace_proxy_up", frozenset())] == 1
        assert ("labspace_workspaces", frozenset({("state", "running")})) in before
        for _ in range(3):
            assert anyone.get("/hub/api/").status_code == 200
        assert anyone.get("/no-such-page").status_code == 404
        after = scrape(admin)
    # The first scrape counts itself once it is answered: at least the three, then.
    assert requests(after, "hub", "2xx") - requests(before, "hub", "2xx") >= 3
    assert requests(after, "other", "4xx") - requests(before, "other", "4xx") == 1


def test_the_proxy_serves_no_metrics_on_the_public_port(stack: Stack) -> None:
    with stack.client() as admin:
        for path in ("/metrics", "/_labspace/metrics", "/_labspace/proxy/metrics",
                     "/hub/../metrics", "/user/admin/../../metrics"):
            response = admin.get(path)
            assert "labspace_proxy_requests" not in response.text, path


def test_members_and_strangers_are_refused(stack: Stack, people: dict[str, Person]) -> None:
    alice = people["alice"]
    with alice.api() as token, closing(alice.browser()) as session, httpx.Client(
            base_url=stack.url, timeout=30) as anyone:
        refusals = [token.get("/hub/metrics"), session.get("/hub/metrics"),
                    anyone.get("/hub/metrics"),
                    anyone.get("/hub/metrics", headers={"Authorization": "Bearer"}),
                    anyone.get("/hub/metrics", headers={"Authorization": "Bearer x" * 40}),
                    anyone.get("/hub/metrics",
                               headers={"Authorization": "Bearer " + "a" * 200_000})]
    # ("Bearer " with nothing after it: h11 will not send a value ending in a space; the
    # servers strip it anyway, and tests/web/test_metrics.py sends it in-process.)
    for response in refusals:
        assert response.status_code in (400, 401, 403, 431) or (
            response.status_code == 303 and "/hub/login" in response.headers["location"])
        assert "labspace_" not in response.text
