"""SSH keys and connection facts in the API, in-process on the FakeRuntime: each user's keys
are their own, bad keys get a reason, and the authorized_keys file follows every change."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from labspace.ssh.files import KEYS_FILE
from labspace.testing import FakeRuntime
from tests.web.conftest import client_as, hub_of


def _keygen(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True, capture_output=True)
    return Path(f"{path}.pub").read_text()


async def test_keys_are_added_listed_removed_and_mirrored_to_the_file(
        api: tuple[httpx.AsyncClient, FakeRuntime], tmp_path: Path) -> None:
    client, _ = api
    keys_file = hub_of(client).ssh_keys.files.keys_dir("ada") / KEYS_FILE
    one, two = _keygen(tmp_path, "one"), _keygen(tmp_path, "two")
    first = await client.post("/hub/api/keys", json={"public_key": one})
    assert first.status_code == 201, first.text
    assert first.json()["name"] == "one" and first.json()["fingerprint"].startswith("SHA256:")
    second = await client.post("/hub/api/keys", json={"public_key": two, "name": "laptop"})
    assert keys_file.read_text().splitlines() == [" ".join(one.split()[:2]),
                                                  " ".join(two.split()[:2])]
    listed = (await client.get("/hub/api/keys")).json()
    assert [k["name"] for k in listed] == ["one", "laptop"]
    assert (await client.delete(f"/hub/api/keys/{first.json()['id']}")).status_code == 204
    assert keys_file.read_text().splitlines() == [" ".join(two.split()[:2])]
    assert second.status_code == 201


async def test_a_duplicate_or_bad_key_is_refused_with_a_reason(
        api: tuple[httpx.AsyncClient, FakeRuntime], tmp_path: Path) -> None:
    client, _ = api
    key = _keygen(tmp_path, "k")
    assert (await client.post("/hub/api/keys", json={"public_key": key})).status_code == 201
    again = await client.post("/hub/api/keys", json={"public_key": key})
    assert again.status_code == 409 and "registered already" in again.json()["error"]
    options = await client.post("/hub/api/keys",
                                json={"public_key": 'command="id" ' + key})
    assert options.status_code == 400 and "options" in options.json()["error"]
    huge = await client.post("/hub/api/keys", json={"public_key": "a" * 20000})
    assert huge.status_code == 422
    name = await client.post("/hub/api/keys",
                             json={"public_key": _keygen(tmp_path, "n"), "name": "a\nb"})
    assert name.status_code == 400


async def test_nobody_sees_or_removes_anothers_keys_but_admins_list_them(
        api: tuple[httpx.AsyncClient, FakeRuntime], tmp_path: Path) -> None:
    client, _ = api
    mine = (await client.post("/hub/api/keys",
                              json={"public_key": _keygen(tmp_path, "ada")})).json()
    async with await client_as(client, "eve") as eve, \
            await client_as(client, "boss", admin=True) as root:
        assert (await eve.get("/hub/api/keys")).json() == []
        gone = await eve.delete(f"/hub/api/keys/{mine['id']}")
        assert gone.status_code == 404  # as unknown as a key that does not exist
        assert (await eve.get("/hub/api/keys", params={"all": "true"})).status_code == 403
        everyone = (await root.get("/hub/api/keys", params={"all": "true"})).json()
        assert [(k["owner"], k["fingerprint"]) for k in everyone] == [
            ("ada", mine["fingerprint"])]
    assert len((await client.get("/hub/api/keys")).json()) == 1


async def test_a_disabled_users_keys_stop_working_and_come_back_on_enable(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime], tmp_path: Path) -> None:
    client, _ = admin_api
    async with await client_as(client, "bob") as bob:
        assert (await bob.post("/hub/api/keys",
                               json={"public_key": _keygen(tmp_path, "b")})).status_code == 201
    keys_file = hub_of(client).ssh_keys.files.keys_dir("bob") / KEYS_FILE
    assert keys_file.read_text().strip()
    assert (await client.post("/hub/api/users/bob/disable")).status_code == 200
    assert keys_file.read_text() == ""
    assert (await client.post("/hub/api/users/bob/enable")).status_code == 200
    assert keys_file.read_text().strip()


async def test_ssh_facts_give_the_workspaces_own_host_key_to_its_owner_only(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    assert (await client.post("/hub/api/workspaces",
                              json={"name": "lab", "template": "jupyterlab",
                                    "start": False})).status_code == 201
    facts = (await client.get("/hub/api/workspaces/ada/lab/ssh")).json()
    assert facts["user"] == "ada" and facts["host_key"].startswith("ssh-ed25519 ")
    assert facts["tunnel_path"] == "/tunnel/ada/lab/22"
    assert (await client.get("/hub/api/workspaces/ada/lab/ssh")).json() == facts  # kept
    async with await client_as(client, "eve") as eve:
        assert (await eve.get("/hub/api/workspaces/ada/lab/ssh")).status_code == 404
