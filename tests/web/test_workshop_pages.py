"""The instructors' pages /hub/workshops: forms through the page's CSRF token, the same
operations (and audit entries) as the API, and refused to members and to other origins."""

from __future__ import annotations

import re

import httpx

from labspace.audit import AuditQuery
from labspace.testing import FakeRuntime
from tests.web.conftest import browser_as, client_as, hub_of

CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert page.status_code == 200 and found, page.text[:300]
    return found.group(1)


async def test_an_instructor_runs_a_workshop_from_the_pages(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    member, _ = api
    hub = hub_of(member)
    await (await client_as(member, "teacher")).aclose()
    await hub.users.update("teacher", role="instructor")
    async with await browser_as(member, "teacher") as browser:
        csrf = csrf_of(await browser.get("/hub/workshops"))
        made = await browser.post("/hub/workshops", data={
            "_csrf": csrf, "name": "intro", "seats": "3", "expires": "2d", "opens": ""})
        assert made.status_code == 303 and made.headers["location"] == "/hub/workshops/intro"
        page = await browser.get("/hub/workshops/intro")
        assert all(f"intro-0{n}" in page.text for n in (1, 2, 3))
        old = (await hub.workshops.cards("intro", "http://hub"))[1]
        reset = await browser.post("/hub/workshops/intro/reset/intro-02", data={"_csrf": csrf})
        assert reset.status_code == 200 and "New credentials for" in reset.text
        new = (await hub.workshops.cards("intro", "http://hub"))[1]
        assert new.password != old.password and new.password in reset.text
        entries = await hub.audit.query(AuditQuery(action="workshop.reset"))
        assert [(e.actor, e.target) for e in entries] == [("teacher", "intro/intro-02")]
        bad = await browser.post("/hub/workshops/intro/extend",
                                 data={"_csrf": csrf, "expires": "someday"})
        assert bad.status_code == 400 and "not a date" in bad.text
        kept = await browser.post("/hub/workshops/intro/delete",
                                  data={"_csrf": csrf, "confirm": "intr"})
        assert kept.status_code == 400 and (await hub.workshops.get("intro")).seats == 3
        gone = await browser.post("/hub/workshops/intro/delete",
                                  data={"_csrf": csrf, "confirm": "intro"})
        assert gone.status_code == 303
        assert [w.name for w in await hub.workshops.list()] == []
        assert [(e.actor, e.target) for e in await hub.audit.query(
            AuditQuery(action="workshop.delete"))] == [("teacher", "intro")]


async def test_the_pages_refuse_members_other_origins_and_forged_forms(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    member, _ = api
    hub = hub_of(member)
    async with await browser_as(member, "ada") as browser:  # ada is a member
        assert (await browser.get("/hub/workshops")).status_code == 403
        nav = await browser.get("/hub/")
        assert 'href="/hub/workshops"' not in nav.text
    await (await client_as(member, "teacher")).aclose()
    await hub.users.update("teacher", role="instructor")
    async with await browser_as(member, "teacher") as browser:
        page = await browser.get("/hub/workshops")
        csrf = csrf_of(page)
        form = {"_csrf": csrf, "name": "sneaky", "seats": "2", "expires": "1d"}
        for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
            refused = await browser.post("/hub/workshops", data=form,
                                         headers={"Origin": origin})
            assert refused.status_code == 403, origin
        forged = await browser.post("/hub/workshops", data={**form, "_csrf": "forged"})
        assert forged.status_code == 403
        assert await hub.workshops.list() == []
        assert 'href="/hub/workshops"' in (await browser.get("/hub/")).text


async def test_an_instructors_workshop_page_opens_an_instant_app(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    """The create form offers templates and instant apps in one list; what it sends is
    checked as the API checks it (an unknown app, a made-up kind: refused, nothing made)."""
    member, _ = api
    hub = hub_of(member)
    async with await client_as(member, "teacher") as teacher:
        await hub.users.update("teacher", role="instructor")
        added = await teacher.post("/hub/api/apps", json={
            "name": "intro", "template": "notebook-app", "path": "lab/tree/welcome.ipynb"})
        assert added.status_code == 201, added.text
    async with await browser_as(member, "teacher") as browser:
        page = await browser.get("/hub/workshops")
        assert 'value="app:intro"' in page.text and 'value="template:jupyterlab"' in page.text
        form = {"_csrf": csrf_of(page), "seats": "2", "expires": "2d"}
        for opens, status, said in (("app:ghost", 404, "ghost"), ("shell:rm", 400, "choose"),
                                    ("app:", 400, "choose")):
            refused = await browser.post("/hub/workshops",
                                         data={**form, "name": "bad", "opens": opens})
            assert refused.status_code == status and said in refused.text, opens
        assert await hub.workshops.list() == []
        made = await browser.post("/hub/workshops",
                                  data={**form, "name": "demo", "opens": "app:intro"})
        assert made.status_code == 303, made.text[:300]
        info = await hub.workshops.get("demo")
        assert (info.app, info.template) == ("intro", None)
        assert "app intro" in (await browser.get("/hub/workshops")).text
