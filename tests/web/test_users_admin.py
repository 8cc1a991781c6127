"""Administration at workshop scale (in process, FakeRuntime): the users API's search,
filters, pages and X-Total-Count; bulk disable, enable, reset and delete with the caller's
own name refused on its own and homes deleted only with "delete N homes"; the users page, its
pager and its bulk form through the page's CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from labspace.identity.passwords import verify_password
from labspace.identity.users import DIRECTORY
from labspace.testing import FakeRuntime
from tests.web.conftest import browser_as, client_as, hub_of

HTML = {"Accept": "text/html"}
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


@pytest.fixture
async def lab(admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> httpx.AsyncClient:
    """ada (an admin) and 120 more: user-000 ... user-119, and dora from the directory."""
    client, _ = admin_api
    hub = hub_of(client)
    for i in range(119):
        await hub.users.create(f"user-{i:03d}")  # no password: no argon2 for each
    await hub.users.sync_external_user(DIRECTORY, "dora", uid=54321, gid=6000, is_admin=None,
                                       groups=[{"name": "phd", "gid": 6001}])
    await hub.users.set_disabled("user-007")
    return client


@pytest.fixture
async def browser(lab: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """ada's browser: a session cookie, sending its own Origin as browsers do."""
    async with await browser_as(lab, "ada") as client:
        yield client


async def _names(client: httpx.AsyncClient, **params: str | int) -> list[str]:
    answer = await client.get("/hub/api/users", params=params)
    assert answer.status_code == 200, answer.text
    return [user["name"] for user in answer.json()]


async def test_the_list_searches_filters_and_pages_with_the_total(
        lab: httpx.AsyncClient) -> None:
    everyone = await lab.get("/hub/api/users")
    assert len(everyone.json()) == 121 and everyone.headers["x-total-count"] == "121"
    page = await lab.get("/hub/api/users", params={"q": "USER-0", "limit": 10, "offset": 95})
    assert [u["name"] for u in page.json()] == [f"user-{i:03d}" for i in range(95, 100)]
    assert page.headers["x-total-count"] == "100"
    assert await _names(lab, q="%") == [] and await _names(lab, q="_") == []
    assert await _names(lab, role="admin") == ["ada"]
    assert await _names(lab, state="disabled") == ["user-007"]
    assert await _names(lab, group="phd") == ["dora"]
    assert await _names(lab, source="ldap") == ["dora"]
    assert await _names(lab, workshop="none-such") == []
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"role": "root"},
                {"state": "gone"}):
        assert (await lab.get("/hub/api/users", params=bad)).status_code == 422, bad


async def test_bulk_actions_report_each_name_and_refuse_the_callers_own(
        lab: httpx.AsyncClient) -> None:
    hub = hub_of(lab)

    async def bulk(action: str, *names: str, **more: object) -> list[dict[str, object]]:
        answer = await lab.post("/hub/api/users/bulk",
                                json={"action": action, "names": list(names), **more})
        assert answer.status_code == 200, answer.text
        return answer.json()

    done = await bulk("disable", "user-001", "user-002", "ada", "ghost")
    assert [(r["name"], r["ok"]) for r in done] == [
        ("user-001", True), ("user-002", True), ("ada", False), ("ghost", False)]
    assert "your own account" in str(done[2]["error"]) and "ghost" in str(done[3]["error"])
    assert await _names(lab, state="disabled") == ["user-001", "user-002", "user-007"]
    assert all(r["ok"] for r in await bulk("enable", "user-001", "user-002", "user-007"))
    assert await _names(lab, state="disabled") == []

    reset = await bulk("reset", "user-003", "dora")
    password = str(reset[0]["password"])
    assert reset[0]["ok"] and verify_password(
        (await hub.users.get("user-003")).password_hash, password)
    assert not reset[1]["ok"] and reset[1]["password"] is None
    assert "ldap" in str(reset[1]["error"])

    (hub.settings.homes / "user-004").mkdir(parents=True, exist_ok=True)
    (hub.settings.homes / "user-004" / "notes.txt").write_text("keep me")
    deleted = await bulk("delete", "user-004", "user-005", "ada")
    assert [r["ok"] for r in deleted] == [True, True, False]
    assert (await lab.get("/hub/api/users/user-004")).status_code == 404
    kept = list((hub.settings.homes / ".deleted").glob("user-004-*"))
    assert len(kept) == 1 and (kept[0] / "notes.txt").read_text() == "keep me"
    assert (await lab.get("/hub/api/users/ada")).status_code == 200


async def test_deleting_homes_needs_the_typed_confirmation(lab: httpx.AsyncClient) -> None:
    hub = hub_of(lab)
    for name in ("user-010", "user-011"):
        (hub.settings.homes / name).mkdir(parents=True, exist_ok=True)
        (hub.settings.homes / name / "data.csv").write_text("1,2")
    body = {"action": "delete", "names": ["user-010", "user-011"], "delete_home": True}
    for confirm in ("", "delete 1 homes", "user-010", "delete 3 homes"):
        wrong = await lab.post("/hub/api/users/bulk", json={**body, "confirm": confirm})
        assert wrong.status_code == 400 and "delete 2 homes" in wrong.json()["error"]
    assert await _names(lab, q="user-01") == [f"user-{i:03d}" for i in range(10, 20)]
    assert (hub.settings.homes / "user-010" / "data.csv").exists()
    right = await lab.post("/hub/api/users/bulk", json={**body, "confirm": "delete 2 homes"})
    assert right.status_code == 200 and all(r["ok"] for r in right.json())
    assert not (hub.settings.homes / "user-010").exists()
    assert not list((hub.settings.homes / ".deleted").glob("user-01*"))


async def test_bulk_is_for_admins_and_bounded(lab: httpx.AsyncClient) -> None:
    member = await client_as(lab, "mallory")
    refused = await member.post("/hub/api/users/bulk",
                                json={"action": "disable", "names": ["ada"]})
    assert refused.status_code == 403
    assert (await member.get("/hub/api/users")).status_code == 403
    huge = await lab.post("/hub/api/users/bulk",
                          json={"action": "disable", "names": [f"u{i}" for i in range(501)]})
    assert huge.status_code == 422
    for body in ({"action": "disable", "names": []}, {"action": "explode", "names": ["a"]},
                 {"action": "disable", "names": ["x" * 31]}):
        assert (await lab.post("/hub/api/users/bulk", json=body)).status_code == 422
    assert await _names(lab, state="disabled") == ["user-007"]


async def test_a_bulk_post_from_another_origin_with_the_admins_cookie_is_refused(
        lab: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/hub/admin/users")
    csrf = CSRF_RE.search(page.text)
    assert page.status_code == 200 and csrf
    form = {"_csrf": csrf.group(1), "action": "disable", "names": ["user-020"]}
    for origin in ("http://evil.localhost", "http://hub.evil.example"):
        elsewhere = await browser.post("/hub/admin/users/bulk", data=form,
                                       headers={"Origin": origin})
        assert elsewhere.status_code == 403
        api_call = await browser.post("/hub/api/users/bulk", headers={
            "Origin": origin, "X-CSRF-Token": csrf.group(1)},
            json={"action": "disable", "names": ["user-020"]})
        assert api_call.status_code == 403
    forged = await browser.post("/hub/admin/users/bulk", data={**form, "_csrf": "forged"})
    assert forged.status_code == 403
    assert await _names(lab, state="disabled") == ["user-007"]


async def test_the_users_page_pages_filters_and_acts_through_its_form(
        lab: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    hub = hub_of(lab)
    admin = await browser.get("/hub/admin")
    assert "all 121 users" in admin.text
    assert admin.text.count('class="strong">user-') == 18  # after ada and dora: 20

    first = await browser.get("/hub/admin/users")
    assert "showing 1-50 of 121" in first.text and 'rel="prev"' not in first.text
    assert first.text.count('name="names" value="') == 50 + 49  # ticks, and a delete each
    second = await browser.get("/hub/admin/users?page=2")
    assert "showing 51-100 of 121" in second.text
    last = await browser.get("/hub/admin/users?page=3")
    assert "showing 101-121 of 121" in last.text and 'rel="next"' not in last.text
    found = await browser.get("/hub/admin/users", params={"q": "user-0", "state": "enabled"})
    assert "showing 1-50 of 99" in found.text
    assert 'href="/hub/admin/users?q=user-0&amp;state=enabled&amp;page=2"' in found.text
    assert "&lt;b&gt;" in (await browser.get("/hub/admin/users?q=<b>")).text  # escaped

    csrf = CSRF_RE.search(found.text)
    assert csrf
    token = csrf.group(1)
    back = "q=user-0&state=enabled&page=2&next=https://evil.example/"
    disabled = await browser.post("/hub/admin/users/bulk", data={
        "_csrf": token, "action": "disable", "names": ["user-030", "user-031"], "back": back})
    assert disabled.status_code == 303
    assert disabled.headers["location"] == "/hub/admin/users?q=user-0&state=enabled&page=2"
    assert await _names(lab, state="disabled") == ["user-007", "user-030", "user-031"]

    reset = await browser.post("/hub/admin/users/bulk", data={
        "_csrf": token, "action": "reset", "names": ["user-040"], "back": back})
    shown = re.search(r'<pre class="secret">([^<]+)</pre>', reset.text)
    assert reset.status_code == 200 and shown and "shown only now" in reset.text
    assert verify_password((await hub.users.get("user-040")).password_hash, shown.group(1))

    (hub.settings.homes / "user-050").mkdir(parents=True, exist_ok=True)
    doomed = {"_csrf": token, "action": "delete", "names": ["user-050", "user-051"],
              "back": back}
    confirm = await browser.post("/hub/admin/users/bulk", data=doomed)
    assert confirm.status_code == 200 and "delete 2 homes" in confirm.text
    assert confirm.text.count('<li class="strong">user-05') == 2
    token = CSRF_RE.search(confirm.text).group(1)  # type: ignore[union-attr]
    wrong = await browser.post("/hub/admin/users/bulk", data={
        **doomed, "_csrf": token, "confirmed": "true", "delete_home": "true",
        "confirm": "delete them"})
    assert wrong.status_code == 400 and "nothing was deleted" in wrong.text
    assert (await lab.get("/hub/api/users/user-050")).status_code == 200
    kept = await browser.post("/hub/admin/users/bulk", data={
        **doomed, "_csrf": token, "confirmed": "true"})
    assert kept.status_code == 200 and "2 of 2 done" in kept.text
    assert (await lab.get("/hub/api/users/user-050")).status_code == 404
    assert list((hub.settings.homes / ".deleted").glob("user-050-*"))
    assert 'href="/hub/admin/users?q=user-0&amp;state=enabled&amp;page=2"' in kept.text
