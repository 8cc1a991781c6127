"""The audit log through the hub: what is recorded, and who may read it (in-process hub)."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from labspace.audit import AuditQuery
from labspace.testing import FakeRuntime
from tests.web.conftest import client_as, hub_of

Api = tuple[httpx.AsyncClient, FakeRuntime]
ADDRESS = "203.0.113.7"


def _from(api: httpx.AsyncClient, address: str = ADDRESS) -> httpx.AsyncClient:
    """A browser of the same hub, from ``address``."""
    transport = api._transport
    assert isinstance(transport, httpx.ASGITransport) and isinstance(transport.app, FastAPI)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=transport.app,
                                                           client=(address, 4242)),
                             base_url="http://hub", headers={"Origin": "http://hub"})


async def _log_in(browser: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    form = (await browser.get("/hub/login")).text
    nonce = form.split('name="_login" value="', 1)[1].split('"', 1)[0]
    return await browser.post("/hub/login", data={"username": name, "password": password,
                                                  "_login": nonce})


async def test_logins_ok_and_failed_are_recorded_with_address_and_name(admin_api: Api) -> None:
    client, _ = admin_api
    hub = hub_of(client)
    await hub.users.create("grace", password="correct-horse-battery")
    async with _from(client) as browser:
        assert (await _log_in(browser, "Grace ", "wrong-password-1")).status_code == 401
        assert (await _log_in(browser, "grace", "correct-horse-battery")).status_code == 303
    entries = (await client.get("/hub/api/audit", params={"action": "login"})).json()
    ok, failed = entries
    assert (ok["action"], ok["actor"], ok["address"], ok["ok"]) == (
        "login.ok", "grace", ADDRESS, True)
    assert (failed["action"], failed["target"], failed["address"], failed["ok"]) == (
        "login.failed", "Grace ", ADDRESS, False)
    assert "wrong-password-1" not in json.dumps(entries)


async def test_changes_are_recorded_and_filtered(admin_api: Api) -> None:
    client, _ = admin_api
    assert (await client.post("/hub/api/users", json={"name": "bob"})).status_code == 201
    assert (await client.post("/hub/api/users/bob/disable")).status_code == 200
    assert (await client.post("/hub/api/users/bob/enable")).status_code == 200
    created = await client.post("/hub/api/workspaces", json={"name": "lab", "owner": "bob",
                                                             "template": "jupyterlab"})
    assert created.status_code == 201
    assert (await client.post("/hub/api/workspaces/bob/lab/stop")).status_code == 200
    assert (await client.delete("/hub/api/workspaces/bob/lab")).status_code == 204
    bob = (await client.get("/hub/api/audit", params={"user": "bob"})).json()
    assert [e["action"] for e in bob] == [
        "workspace.delete", "workspace.stop", "workspace.start", "workspace.create",
        "user.enable", "user.disable", "user.create"]
    assert {(e["actor"], e["address"]) for e in bob} == {("ada", "127.0.0.1")}
    users = (await client.get("/hub/api/audit", params={"action": "user"})).json()
    assert [e["action"] for e in users] == ["user.enable", "user.disable", "user.create"]
    assert (await client.get("/hub/api/audit", params={"since": "1h"})).json()
    assert (await client.get("/hub/api/audit", params={"until": "1h"})).json() == []
    page = (await client.get("/hub/api/audit", params={"limit": 2})).json()
    older = (await client.get("/hub/api/audit",
                              params={"limit": 2, "before": page[-1]["id"]})).json()
    assert [e["action"] for e in page + older] == [e["action"] for e in bob[:4]]


async def test_json_lines_export(admin_api: Api) -> None:
    client, _ = admin_api
    await hub_of(client).audit.record("user.create", actor="ada", target="x", address="a")
    await hub_of(client).audit.record("user.delete", actor="ada", target="x", address="a")
    for path, params in (("/hub/api/audit.jsonl", {}), ("/hub/api/audit", {"format": "jsonl"})):
        response = await client.get(path, params=params | {"user": "x"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert "attachment" in response.headers["content-disposition"]
        rows = [json.loads(line) for line in response.text.splitlines()]
        assert [row["action"] for row in rows] == ["user.delete", "user.create"]


async def test_only_admins_read_the_log(api: Api) -> None:
    client, _ = api
    for path in ("/hub/api/audit", "/hub/api/audit.jsonl", "/hub/admin/audit"):
        assert (await client.get(path)).status_code == 403
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://hub")
    async with anonymous:
        assert (await anonymous.get("/hub/api/audit")).status_code == 401


async def test_bad_filters_are_clear_4xx(admin_api: Api) -> None:
    client, _ = admin_api
    for params, status in (({"since": "yesterday"}, 400), ({"since": "9999999w"}, 400),
                           ({"until": "2024-13-45"}, 400), ({"since": "7d" * 100}, 422),
                           ({"action": "login%"}, 422), ({"limit": 0}, 422),
                           ({"before": -1}, 422)):
        response = await client.get("/hub/api/audit", params=params)
        assert response.status_code == status, params
        assert response.json()["error"]
    page = await client.get("/hub/admin/audit", params={"since": "soon"})
    assert page.status_code == 400 and "since:" in page.text


async def test_no_request_can_write_an_entry(admin_api: Api) -> None:
    """There is no write endpoint: a cross-origin POST (or any other) adds nothing."""
    client, _ = admin_api
    hub = hub_of(client)
    before = len(await hub.audit.query())
    async with _from(client) as browser:
        browser.headers["Origin"] = "http://evil.example"
        browser.cookies.set(hub.settings.session_cookie, "whatever")
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = await browser.request(method, "/hub/api/audit",
                                              json={"action": "login.ok", "actor": "ada"})
            assert response.status_code in (401, 403, 405)
    for method in ("POST", "PUT", "DELETE"):
        assert (await client.request(method, "/hub/api/audit")).status_code == 405
    assert len(await hub.audit.query()) == before


async def test_admin_page_filters_pages_and_links(admin_api: Api) -> None:
    client, _ = admin_api
    hub = hub_of(client)
    for n in range(105):
        await hub.audit.record("workspace.start", actor="ada", target=f"ada/w{n}")
    await hub.audit.record("login.failed", actor="", target="<mallory>", ok=False)
    assert 'href="/hub/admin/audit"' in (await client.get("/hub/admin")).text
    page = (await client.get("/hub/admin/audit")).text
    assert "&lt;mallory&gt;" in page and "<mallory>" not in page
    assert 'id="audit-older"' in page and 'id="audit-export"' in page
    older = page.split('id="audit-older"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    second = (await client.get(older.replace("&amp;", "&"))).text
    assert "ada/w0<" in second and 'id="audit-older"' not in second
    filtered = (await client.get("/hub/admin/audit", params={"action": "login"})).text
    assert "&lt;mallory&gt;" in filtered and "ada/w1<" not in filtered
    export = filtered.split('id="audit-export"', 1)[0].rsplit('href="', 1)[1].split('"')[0]
    assert export == "/hub/api/audit.jsonl?action=login"


async def test_ports_keys_and_tokens_are_recorded(api: Api) -> None:
    client, _ = api
    hub = hub_of(client)
    assert (await client.post("/hub/api/tokens", json={"note": "ci"})).status_code == 201
    ed25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
               " ada@laptop")
    added = await client.post("/hub/api/keys", json={"public_key": ed25519})
    assert added.status_code == 201, added.text
    assert (await client.delete(f"/hub/api/keys/{added.json()['id']}")).status_code == 204
    entries = await hub.audit.query(AuditQuery(user="ada"))
    assert [e.action for e in entries] == ["sshkey.remove", "sshkey.add", "token.create"]
    other = await client_as(client, "eve", admin=False)
    async with other:
        assert (await other.get("/hub/api/audit")).status_code == 403
