"""The users API as an admin sees it (in process, FakeRuntime): where each account comes
from and its ids and groups; the directory check, refused to users and absent without a
directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from labspace.identity.users import DIRECTORY
from labspace.testing import FakeRuntime
from tests.web.conftest import client_as, hub_of


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


async def _bob_with_a_workspace(client: httpx.AsyncClient) -> httpx.AsyncClient:
    bob = await client_as(client, "bob")
    await bob.post("/hub/api/workspaces", json={"name": "lab", "template": "jupyterlab"})
    for _ in range(200):  # bounded: 200 x 10 ms
        if (await bob.get("/hub/api/workspaces/bob/lab")).json()["state"] == "running":
            break
        await asyncio.sleep(0.01)
    return bob


async def test_deleting_a_user_removes_access_workspaces_and_retires_the_uid(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, runtime = admin_api
    hub = hub_of(client)
    bob = await _bob_with_a_workspace(client)
    old = (await client.get("/hub/api/users/bob")).json()
    home = hub.settings.homes / "bob"
    (home / "thesis.tex").write_text("chapter 1")
    assert any(c.spec.labels.get("org.labspace.owner") == "bob"
               for c in runtime.containers.values())

    deleted = await client.delete("/hub/api/users/bob")
    assert deleted.status_code == 200, deleted.text
    kept = Path(deleted.json()["home_kept_at"])
    assert deleted.json()["uid"] == old["uid"]
    assert (kept / "thesis.tex").read_text() == "chapter 1" and not home.exists()
    assert kept.parent == hub.settings.homes / ".deleted"
    assert (await bob.get("/hub/api/workspaces")).status_code == 401
    assert (await client.get("/hub/api/users/bob")).status_code == 404
    assert not any(c.spec.labels.get("org.labspace.owner") == "bob"
                   for c in runtime.containers.values())

    # Someone new named bob is someone else: another uid, an empty home of their own.
    again = await _bob_with_a_workspace(client)
    assert (await client.get("/hub/api/users/bob")).json()["uid"] > old["uid"]
    assert not (hub.settings.homes / "bob" / "thesis.tex").exists()
    await again.aclose()


async def test_a_home_is_deleted_only_with_the_users_name_as_confirmation(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    await _bob_with_a_workspace(client)
    home = hub_of(client).settings.homes / "bob"
    for confirm in ("", "bobby", "BOB"):
        refused = await client.delete("/hub/api/users/bob",
                                      params={"delete_home": "true", "confirm": confirm})
        assert refused.status_code == 400 and "confirm=bob" in refused.json()["error"]
    assert home.is_dir() and (await client.get("/hub/api/users/bob")).status_code == 200
    done = await client.delete("/hub/api/users/bob",
                               params={"delete_home": "true", "confirm": "bob"})
    assert done.status_code == 200 and done.json()["home_kept_at"] is None
    assert not home.exists()


async def test_nobody_deletes_themselves_and_users_delete_nobody(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    assert (await client.delete("/hub/api/users/ada")).status_code == 403
    assert (await client.delete("/hub/api/users/ghost")).status_code == 404
    bob = await client_as(client, "bob")
    await client_as(client, "carol")
    assert (await bob.delete("/hub/api/users/carol")).status_code == 403
    assert (await client.get("/hub/api/users/carol")).status_code == 200


async def test_a_directory_account_gets_no_local_password(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    """A password set here would be a second way in that outlives the directory's."""
    api, _ = admin_api
    await hub_of(api).users.sync_external_user(DIRECTORY, "dora", uid=52000, gid=None,
                                               groups=[], is_admin=False)
    for body in ({}, {"password": "a-long-and-fine-passphrase"}):
        refused = await api.post("/hub/api/users/dora/password", json=body)
        assert refused.status_code == 400 and "ldap login" in refused.json()["error"]
    assert (await hub_of(api).users.get("dora")).password_hash is None
