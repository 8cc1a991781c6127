"""The instant apps' page /hub/apps: the apps with their links and pools' figures, forms
through the page's CSRF token doing what the API does (and its audit entries), refused to
members, to other instructors' apps, to other origins and to forged forms; and the claim
latency's quantiles from the pool's histogram."""

from __future__ import annotations

import math
import re

import httpx
import pytest

from labspace.apps.queue import LatencyHistogram
from labspace.audit import AuditQuery
from labspace.hub import Hub
from labspace.testing import FakeRuntime
from labspace.web.apppages import latency_quantile, latency_text
from tests.web.conftest import browser_as, client_as, hub_of

CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')
FORM = {"name": "demo", "template": "notebook-app", "path": "lab/tree/welcome.ipynb",
        "spares": "0", "max_claimed": "7", "idle_minutes": "15", "access": "anyone"}


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert page.status_code == 200 and found, page.text[:300]
    return found.group(1)


def cells(page: str, app: str) -> dict[str, str]:
    """The figures of one app's row, by their data-field."""
    row = page.split(f'data-app="{app}"', 1)[1].split("</tr>", 1)[0]
    return dict(re.findall(r'data-field="(\w+)">(?:<span[^>]*>)?([^<]*)<', row))


async def instructor(api: httpx.AsyncClient, name: str) -> None:
    await (await client_as(api, name)).aclose()
    await hub_of(api).users.update(name, role="instructor")


async def actions(hub: Hub, action: str) -> list[tuple[str, str | None]]:
    return [(e.actor, e.target) for e in await hub.audit.query(AuditQuery(action=action))]


# -- the quantiles ----------------------------------------------------------------------------


def histogram(*seconds: float) -> dict[str, object]:
    found = LatencyHistogram()
    for value in seconds:
        found.observe(value)
    return found.as_dict()


def test_the_quantiles_are_the_bound_of_the_bucket_that_reaches_them() -> None:
    assert latency_quantile(histogram(), 0.5) is None and latency_text(histogram(), 0.5) == "-"
    fast = histogram(*[0.02] * 98, 0.3, 3.0)  # 98 within 25 ms, one within 0.5 s, one 5 s
    assert latency_quantile(fast, 0.5) == 0.025 and latency_text(fast, 0.5) == "≤ 25 ms"
    assert latency_quantile(fast, 0.99) == 0.5 and latency_text(fast, 0.99) == "≤ 500 ms"
    assert latency_quantile(fast, 1.0) == 5.0 and latency_text(fast, 1.0) == "≤ 5 s"
    even = histogram(0.004, 1.5)  # exactly half in the first bucket: p50 is its bound
    assert latency_quantile(even, 0.5) == 0.005 and latency_quantile(even, 0.99) == 2.5
    slow = histogram(0.01, 500.0, 900.0)  # above every bound
    assert latency_quantile(slow, 0.5) == math.inf and latency_text(slow, 0.99) == "> 120 s"
    by_hand = {"buckets": [{"le": 0.1, "count": 0}, {"le": 1.0, "count": 4},
                           {"le": "+Inf", "count": 4}], "sum": 2.0, "count": 4}
    assert latency_text(by_hand, 0.5) == "≤ 1 s"


# -- the page ---------------------------------------------------------------------------------


async def test_an_instructor_manages_apps_from_the_page(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    member, _ = api
    hub = hub_of(member)
    await instructor(member, "teacher")
    async with await browser_as(member, "teacher") as browser:
        page = await browser.get("/hub/apps")
        csrf = csrf_of(page)
        assert "No apps yet" in page.text and 'href="/hub/apps"' in page.text
        # Apps-only templates are offered too.
        assert '<option value="notebook-app"' in page.text and "(apps only)" in page.text
        added = await browser.post("/hub/apps", data={**FORM, "_csrf": csrf, "shareable": "true"})
        assert added.status_code == 303, added.text
        assert added.headers["location"] == "/hub/apps?done=added&app=demo"
        record = await hub.apps.get("demo")
        assert record.created_by == "teacher" and record.definition.shareable
        assert record.definition.pool.idle_timeout == 15 * 60
        assert record.definition.pool.max_claimed == 7
        assert record.definition.path == "lab/tree/welcome.ipynb"
        assert await actions(hub, "app.add") == [("teacher", "demo")]

        latency = hub.apps.pools.pool("demo").latency
        for seconds in (0.02, 0.02, 0.04, 3.0):
            latency.observe(seconds)
        page = await browser.get(added.headers["location"])
        assert "App demo added" in page.text
        assert f'href="{hub.settings.url}/apps/demo"' in page.text
        status = (await hub.apps.status("demo")).as_dict()
        figures = cells(page.text, "demo")
        for field in ("ready", "starting", "claimed", "queued", "culled", "claims"):
            assert figures[field] == str(status[field]), field
        assert figures["p50"] == "≤ 25 ms" and figures["p99"] == "≤ 5 s"
        assert 'data-field="draining"><span class="badge state-running">open' in page.text

        drained = await browser.post("/hub/apps/demo/drain", data={"_csrf": csrf})
        assert drained.status_code == 303 and (await hub.apps.get("demo")).draining
        page = await browser.get("/hub/apps")
        assert "badge state-stopping\">draining" in page.text
        assert 'action="/hub/apps/demo/drain"' not in page.text  # drained already
        refreshed = await browser.post("/hub/apps/demo/refresh", data={"_csrf": csrf})
        assert refreshed.status_code == 303
        after = await hub.apps.get("demo")
        assert not after.draining and after.generation == record.generation + 1
        assert await actions(hub, "app.drain") == [("teacher", "demo")]
        assert await actions(hub, "app.refresh") == [("teacher", "demo")]

        kept = await browser.post("/hub/apps/demo/delete", data={"_csrf": csrf, "confirm": "dem"})
        assert kept.status_code == 400 and "name (demo) to delete it" in kept.text
        assert [r.name for r in await hub.apps.list()] == ["demo"]
        gone = await browser.post("/hub/apps/demo/delete", data={"_csrf": csrf, "confirm": "demo"})
        assert gone.status_code == 303 and await hub.apps.list() == []
        assert await actions(hub, "app.delete") == [("teacher", "demo")]
        assert "App demo deleted" in (await browser.get(gone.headers["location"])).text


@pytest.mark.parametrize(("change", "says"), [
    ({"name": "Bad_Name"}, "Name: 1-30 lowercase letters"),
    ({"name": "two--dashes"}, "two dashes"),
    ({"spares": "-1"}, "Spares: Input should be greater than or equal to 0"),
    ({"spares": "many"}, "Spares: a whole number"),
    ({"max_claimed": "0"}, "Max claimed: Input should be greater than or equal to 1"),
    ({"idle_minutes": "0"}, "Idle timeout: 1 to 10080 minutes"),
    ({"path": "../../hub/admin"}, "Path: a path under the app"),
    ({"access": "everyone"}, "Access: anyone or users"),
    ({"template": "no-such"}, "no-such"),
])
async def test_malformed_input_says_what_is_wrong_and_changes_nothing(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime], change: dict[str, str],
        says: str) -> None:
    api, _ = admin_api
    hub = hub_of(api)
    async with await browser_as(api, "ada") as browser:
        csrf = csrf_of(await browser.get("/hub/apps"))
        refused = await browser.post("/hub/apps", data={**FORM, **change, "_csrf": csrf})
        assert refused.status_code in (400, 404), refused.text
        assert 'class="alert error"' in refused.text and says in refused.text, refused.text
        # The form keeps what was typed.
        assert f'value="{change.get("name", "demo")}"' in refused.text
    assert await hub.apps.list() == []
    assert await actions(hub, "app.add") == []


async def test_the_page_refuses_members_other_instructors_origins_and_forged_forms(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    member, _ = api
    hub = hub_of(member)
    async with await browser_as(member, "ada") as browser:  # ada is a member
        assert (await browser.get("/hub/apps")).status_code == 403
        assert 'href="/hub/apps"' not in (await browser.get("/hub/")).text
        assert (await browser.post("/hub/apps", data=FORM)).status_code == 403
    await instructor(member, "teacher")
    await instructor(member, "other")
    async with await browser_as(member, "teacher") as browser:
        csrf = csrf_of(await browser.get("/hub/apps"))
        assert (await browser.post("/hub/apps", data={**FORM, "_csrf": csrf})).status_code == 303
    before = (await hub.apps.get("demo")).generation
    async with await browser_as(member, "other") as browser:
        page = await browser.get("/hub/apps")
        csrf = csrf_of(page)
        assert 'data-app="demo"' in page.text  # listed, as the API lists it
        assert 'action="/hub/apps/demo/drain"' not in page.text  # but not theirs to manage
        for action in ("drain", "refresh"):
            refused = await browser.post(f"/hub/apps/demo/{action}", data={"_csrf": csrf})
            assert refused.status_code == 403 and "managed by teacher" in refused.text
        refused = await browser.post("/hub/apps/demo/delete",
                                     data={"_csrf": csrf, "confirm": "demo"})
        assert refused.status_code == 403
        assert not (await hub.apps.get("demo")).draining
        form = {**FORM, "name": "sneaky", "_csrf": csrf}
        for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
            refused = await browser.post("/hub/apps", data=form, headers={"Origin": origin})
            assert refused.status_code == 403, origin
        del browser.headers["Origin"]
        assert (await browser.post("/hub/apps", data=form)).status_code == 403
        browser.headers["Origin"] = "http://hub"
        assert (await browser.post("/hub/apps", data={**form, "_csrf": "forged"})
                ).status_code == 403
        assert (await browser.post("/hub/apps", data={k: v for k, v in form.items()
                                                      if k != "_csrf"})).status_code == 403
    assert [r.name for r in await hub.apps.list()] == ["demo"]
    assert (await hub.apps.get("demo")).generation == before
    assert await actions(hub, "app.drain") == [] and await actions(hub, "app.delete") == []
