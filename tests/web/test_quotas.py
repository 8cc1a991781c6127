"""Quotas through the API and the pages: admins only, the usual CSRF and origin rules,
validated bodies, and a refused start answered 409 with the quota's message."""

from __future__ import annotations

import re

import httpx
import pytest

from labspace.testing import FakeRuntime
from tests.web.conftest import browser_as, client_as, hub_of

GIB = 1024**3
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


async def test_admins_set_list_and_remove_quotas(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    set_ = await api.put("/hub/api/quotas/user/ada", json={"cpus": 3, "memory": "6g"})
    assert set_.status_code == 200, set_.text
    assert set_.json()["memory_bytes"] == 6 * GIB and set_.json()["updated_by"] == "ada"
    group = await api.put("/hub/api/quotas/group/PhD Students", json={"running": 2, "gpus": 0})
    assert group.status_code == 200, group.text
    made = await api.post("/hub/api/workspaces", json={"name": "lab", "template": "jupyterlab"})
    assert made.status_code == 201, made.text  # jupyterlab: 2 CPUs, 4g
    listed = (await api.get("/hub/api/quotas")).json()
    assert [(q["scope"], q["name"]) for q in listed] == [("user", "ada"),
                                                         ("group", "PhD Students")]
    assert listed[0]["in_use"] == {"cpus": 2.0, "memory_bytes": 4 * GIB, "gpus": 0,
                                   "running": 1}
    assert listed[1]["in_use"]["running"] == 0  # ada is not in that group
    assert (await api.get("/hub/api/quotas/mine")).json() == listed[:1]
    refused = await api.post("/hub/api/workspaces",
                             json={"name": "more", "template": "jupyterlab"})
    assert refused.status_code == 409
    assert refused.json()["error"] == ("user ada may use at most 3 CPUs at once and uses 2 "
                                       "CPUs; this workspace asks for 2 CPUs: stop one first")
    hub = hub_of(api)
    assert [record.name for record in await hub.store.list("ada")] == ["lab"]  # undone
    made = await api.post("/hub/api/workspaces",
                          json={"name": "more", "template": "jupyterlab", "start": False})
    assert made.status_code == 201
    start = await api.post("/hub/api/workspaces/ada/more/start")
    assert start.status_code == 409 and "user ada may use at most 3 CPUs" in start.text
    assert (await api.delete("/hub/api/quotas/user/ada")).status_code == 204
    assert (await api.delete("/hub/api/quotas/user/ada")).status_code == 404
    assert (await api.post("/hub/api/workspaces/ada/more/start")).status_code == 200
    actions = [entry["action"] for entry in (await api.get("/hub/api/audit")).json()]
    assert {"quota.set", "quota.unset"} <= set(actions)


async def test_members_may_read_only_their_own(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    member, _ = api
    hub = hub_of(member)
    await hub.users.create("boss", is_admin=True)
    assert (await member.get("/hub/api/quotas")).status_code == 403
    assert (await member.put("/hub/api/quotas/user/ada", json={"cpus": 100})).status_code == 403
    assert (await member.delete("/hub/api/quotas/user/ada")).status_code == 403
    assert (await member.get("/hub/admin/quotas")).status_code == 403
    async with await client_as(member, "root-ish", admin=True) as admin:
        assert (await admin.put("/hub/api/quotas/user/ada",
                                json={"running": 1})).status_code == 200
    mine = (await member.get("/hub/api/quotas/mine")).json()
    assert [(q["name"], q["running"]) for q in mine] == [("ada", 1)]
    async with await browser_as(member, "ada") as browser:
        home = await browser.get("/hub/")
    assert home.status_code == 200 and 'id="my-quotas"' in home.text and "0 / 1" in home.text


async def test_a_browser_needs_our_origin_and_form_token(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    async with await browser_as(api, "ada") as browser:
        page = await browser.get("/hub/admin/quotas")
        assert page.status_code == 200 and "No quotas" in page.text
        token = CSRF_RE.search(page.text)
        assert token
        headers = {"X-CSRF-Token": token.group(1)}
        other = await browser.put("/hub/api/quotas/user/ada", json={"cpus": 1},
                                  headers={**headers, "Origin": "http://evil.example"})
        assert other.status_code == 403 and "another site" in other.text
        no_token = await browser.put("/hub/api/quotas/user/ada", json={"cpus": 1})
        assert no_token.status_code == 403
        ours = await browser.put("/hub/api/quotas/user/ada", json={"cpus": 1}, headers=headers)
        assert ours.status_code == 200, ours.text
        page = await browser.get("/hub/admin/quotas")
        assert 'data-quota="user:ada"' in page.text and "0 / 1" in page.text
        assert (await browser.get("/hub/admin")).text.count('href="/hub/admin/quotas"') == 1


@pytest.mark.parametrize(("path", "body"), [
    ("/hub/api/quotas/user/ada", {"cpus": -1}),
    ("/hub/api/quotas/user/ada", {"gpus": -2}),
    ("/hub/api/quotas/user/ada", {"running": -1}),
    ("/hub/api/quotas/user/ada", {"cpus": 1e12}),
    ("/hub/api/quotas/user/ada", {"memory": "5000t"}),
    ("/hub/api/quotas/user/ada", {"memory": "lots"}),
    ("/hub/api/quotas/user/ada", {"memory": "9" * 40}),
    ("/hub/api/quotas/user/ada", {"running": 10**9}),
    ("/hub/api/quotas/user/ada", {"cpus": "many"}),
    ("/hub/api/quotas/user/ada", {}),
    ("/hub/api/quotas/user/ada", {"cpus": 1, "disk": "1t"}),
    ("/hub/api/quotas/team/ada", {"cpus": 1}),
    ("/hub/api/quotas/group/" + "g" * 65, {"cpus": 1}),
])
async def test_bad_bodies_and_paths_are_422(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime], path: str,
        body: dict[str, object]) -> None:
    api, _ = admin_api
    answer = await api.put(path, json=body)
    assert answer.status_code == 422, answer.text
    assert (await api.get("/hub/api/quotas")).json() == []


@pytest.mark.parametrize("path", ["/hub/api/quotas/user/Not A Name",
                                  "/hub/api/quotas/group/%20padded",
                                  "/hub/api/quotas/group/tab%09in"])
async def test_bad_names_are_refused(admin_api: tuple[httpx.AsyncClient, FakeRuntime],
                                     path: str) -> None:
    api, _ = admin_api
    answer = await api.put(path, json={"cpus": 1})
    assert answer.status_code == 400 and "invalid" in answer.json()["error"]


async def test_the_new_workspace_form_says_why_and_makes_nothing(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    member, runtime = api
    hub = hub_of(member)
    await hub.users.update("ada", groups=[{"name": "phd", "gid": None}])
    async with await client_as(member, "boss", admin=True) as admin:
        assert (await admin.put("/hub/api/quotas/group/phd",
                                json={"running": 0})).status_code == 200
    async with await browser_as(member, "ada") as browser:
        home = await browser.get("/hub/")
        token = CSRF_RE.search(home.text)
        assert token
        refused = await browser.post("/hub/workspaces", data={
            "_csrf": token.group(1), "name": "lab", "template": "jupyterlab"})
    assert refused.status_code == 409
    assert ("group phd may run at most 0 workspace(s) at once and its members run 0: ask an "
            "administrator") in refused.text
    assert await hub.store.list("ada") == [] and runtime.containers == {}
