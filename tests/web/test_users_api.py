"""The users API as an admin sees it (in process, FakeRuntime): where each account comes
from and its ids and groups; the directory check, refused to users and absent without a
directory."""

from __future__ import annotations

import httpx

from labspace.identity.users import DIRECTORY
from labspace.testing import FakeRuntime
from tests.web.conftest import hub_of


async def test_an_account_shows_its_source_ids_and_groups(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    await hub_of(client).users.sync_external_user(
        DIRECTORY, "dora", uid=54321, gid=6000,
        groups=[{"name": "phd", "gid": 6001}, {"name": "admins", "gid": None}], is_admin=None)
    dora = (await client.get("/hub/api/users/dora")).json()
    assert {k: dora[k] for k in ("uid", "gid", "source", "groups", "admin")} == {
        "uid": 54321, "gid": 6000, "source": "ldap", "groups": ["phd", "admins"],
        "admin": False}
    ada = (await client.get("/hub/api/users/ada")).json()
    assert (ada["source"], ada["gid"], ada["groups"]) == ("local", ada["uid"], [])
    assert (await client.get("/hub/api/users/nobody")).status_code == 404


async def test_the_directory_check_needs_a_directory_and_an_admin(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    answer = await client.post("/hub/api/directory/sync")
    assert answer.status_code == 404 and "no directory" in answer.json()["error"]


async def test_users_may_not_see_accounts_or_run_the_directory_check(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    assert (await client.get("/hub/api/users/ada")).status_code == 403
    assert (await client.post("/hub/api/directory/sync")).status_code == 403
