"""What members may start, enforced on the start path and offered by the API: templates,
resource profiles (their limits reach the container and the instance record) and how many
workspaces, by group; admins acting for someone pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from labspace.testing import FakeRuntime
from tests.web.conftest import _in_process, client_as, hub_of

PROFILES = {"small": {"display_name": "Small", "limits": {"cpus": 1, "memory": "256m"}},
            "big": {"limits": {"cpus": 2, "memory": "1g"}}}
ACCESS = {"interns": {"templates": ["jupyterlab"], "profiles": ["small"], "max_workspaces": 1},
          "phd": {"profiles": ["small", "big"]}}


@pytest.fixture
async def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeRuntime]]:
    """The API as ada, an administrator, on a hub with profiles and access rules."""
    async for pair in _in_process(tmp_path, monkeypatch, admin=True, profiles=PROFILES,
                                  access=ACCESS):
        yield pair


def limits_of(runtime: FakeRuntime, owner: str, name: str) -> tuple[float | None, int | None]:
    (spec,) = [c.spec for c in runtime.containers.values()
               if c.spec.labels.get("org.labspace.owner") == owner
               and c.spec.labels.get("org.labspace.workspace") == name]
    return spec.limits.cpus, spec.limits.memory_bytes


async def test_an_intern_gets_what_the_interns_rule_allows(
        lab: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    admin, runtime = lab
    hub = hub_of(admin)
    other = dict((await admin.get("/hub/api/templates/jupyterlab")).json(), name="other")
    assert (await admin.post("/hub/api/templates", json=other)).status_code == 201
    intern = await client_as(admin, "ivy")
    await hub.users.update("ivy", groups=[{"name": "interns", "gid": None}])
    async with intern:
        assert [t["name"] for t in (await intern.get("/hub/api/templates")).json()] == [
            "jupyterlab"]
        assert [p["name"] for p in (await intern.get("/hub/api/profiles")).json()] == ["small"]
        made = await intern.post("/hub/api/workspaces", json={"name": "a",
                                                              "template": "jupyterlab"})
        assert made.status_code == 201 and made.json()["profile"] == "small"
        await hub.manager.wait_settled((await hub.store.get("ivy", "a")).id)
        assert limits_of(runtime, "ivy", "a") == (1, 256 * 1024**2)
        for body, words in [
            ({"name": "b", "template": "jupyterlab"}, "at most 1 workspace"),
            ({"name": "b", "template": "other"}, "template 'other' is not available"),
            ({"name": "b", "template": "jupyterlab", "profile": "big"}, "profile 'big'"),
        ]:
            if "at most" not in words:
                await intern.delete("/hub/api/workspaces/ivy/a")
            refused = await intern.post("/hub/api/workspaces", json=body)
            assert refused.status_code == 403 and words in refused.json()["error"], refused.text
    # An admin creating for her passes her rules (and says so in the audit log).
    made = await admin.post("/hub/api/workspaces", json={"name": "special", "owner": "ivy",
                                                         "template": "other", "profile": "big"})
    assert made.status_code == 201, made.text


async def test_a_group_change_applies_at_the_next_start(
        lab: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    admin, runtime = lab
    hub = hub_of(admin)
    phd = await client_as(admin, "pat")
    set_groups = await admin.patch("/hub/api/users/pat",
                                   json={"groups": [{"name": "phd", "gid": 5002}]})
    assert set_groups.status_code == 200 and set_groups.json()["groups"] == ["phd"]
    async with phd:
        made = await phd.post("/hub/api/workspaces", json={"name": "deep",
                                                           "template": "jupyterlab",
                                                           "profile": "big"})
        assert made.status_code == 201, made.text
        await hub.manager.wait_settled((await hub.store.get("pat", "deep")).id)
        assert limits_of(runtime, "pat", "deep") == (2, 1024**3)
        instance = await phd.get("/hub/api/workspaces/pat/deep")
        assert instance.json()["profile"] == "big"
        await phd.post("/hub/api/workspaces/pat/deep/stop")
        await admin.patch("/hub/api/users/pat", json={"groups": [{"name": "interns"}]})
        again = await phd.post("/hub/api/workspaces/pat/deep/start")
        assert again.status_code == 403 and "profile 'big'" in again.json()["error"]
    for bad in ({"role": "admin"}, {"groups": [{"name": "root", "gid": 0}]},
                {"groups": [{"name": "Bad Name"}]}, {"surprise": 1}):
        assert (await admin.patch("/hub/api/users/pat", json=bad)).status_code == 422, bad


async def test_roles_and_groups_are_the_admins_to_set(
        lab: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    admin, _ = lab
    member = await client_as(admin, "mo")
    async with member:
        refused = await member.patch("/hub/api/users/mo", json={"role": "instructor"})
        assert refused.status_code == 403
    made = await admin.patch("/hub/api/users/mo", json={"role": "instructor"})
    assert made.status_code == 200 and made.json()["role"] == "instructor"
    assert hub_of(admin).is_instructor(await hub_of(admin).users.get("mo"))
