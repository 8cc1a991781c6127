"""Templates for instant apps only (``workspaces = false``): offered nowhere a workspace is
started, and refused there too; administrators still see them (in-process hub)."""

from __future__ import annotations

import httpx

from labspace.testing import FakeRuntime
from tests.web.conftest import browser_as, client_as

APP_ONLY = {"notebook-app", "dashboard-app"}


async def test_members_are_neither_offered_nor_given_app_only_templates(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    names = {spec["name"] for spec in (await client.get("/hub/api/templates")).json()}
    assert "jupyterlab" in names and not names & APP_ONLY
    async with await browser_as(client, "ada") as browser:
        home = await browser.get("/hub/")
    assert home.status_code == 200 and '<option value="jupyterlab"' in home.text
    assert not any(f'value="{name}"' in home.text for name in APP_ONLY)

    refused = await client.post("/hub/api/workspaces",
                                json={"name": "dash", "template": "dashboard-app"})
    assert refused.status_code == 400 and "instant apps only" in refused.json()["error"]
    assert (await client.get("/hub/api/workspaces")).json() == []


async def test_admins_see_them_but_make_no_workspace_or_workshop_of_them(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    specs = {spec["name"]: spec for spec in (await client.get("/hub/api/templates")).json()}
    assert set(specs) >= APP_ONLY and specs["jupyterlab"]["workspaces"]
    assert not any(specs[name]["workspaces"] for name in APP_ONLY)

    async with await client_as(client, "bea") as bea:
        refused = await client.post("/hub/api/workspaces", json={
            "name": "nb", "template": "notebook-app", "owner": "bea"})
        assert refused.status_code == 400, refused.text
        assert (await bea.get("/hub/api/workspaces")).json() == []

    workshop = await client.post("/hub/api/workshops", json={
        "name": "demo", "seats": 2, "expires": "2d", "template": "dashboard-app"})
    assert workshop.status_code == 400 and "instant apps only" in workshop.json()["error"]
    assert (await client.get("/hub/api/workshops")).json() == []
    async with await browser_as(client, "ada") as browser:
        form = await browser.get("/hub/workshops")
    assert form.status_code == 200 and 'value="template:jupyterlab"' in form.text
    assert not any(f'value="template:{name}"' in form.text for name in APP_ONLY)
