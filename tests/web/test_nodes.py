"""``/hub/api/nodes`` on the FakeRuntime (one node); the swarm's nodes are tested in
tests/runtime/test_swarm_runtime.py."""

from __future__ import annotations

import httpx

from labspace.testing import FakeRuntime
from tests.web.test_api_states import settle


async def test_admins_see_the_node_and_what_runs_there(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    await client.post("/hub/api/workspaces", json={"name": "lab", "template": "jupyterlab"})
    assert (await settle(client, "lab"))["state"] == "running"
    (node,) = (await client.get("/hub/api/nodes")).json()
    assert node["hostname"] == "fake" and node["state"] == "ready"
    assert node["workspaces"] == ["ada/lab"]
    assert node["reserved_cpus"] > 0  # the template's limit is reserved while it runs


async def test_a_single_engine_cannot_be_drained(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = admin_api
    refused = await client.post("/hub/api/nodes/fake/drain")
    assert refused.status_code == 400 and "single node" in refused.json()["error"]
    assert (await client.post("/hub/api/nodes/fake/explode")).status_code == 422
    assert (await client.post("/hub/api/nodes/..%2Fx/drain")).status_code in (404, 422)


async def test_users_may_not_list_nodes(api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    assert (await client.get("/hub/api/nodes")).status_code == 403
    assert (await client.post("/hub/api/nodes/fake/drain")).status_code == 403
