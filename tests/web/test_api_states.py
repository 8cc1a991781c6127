"""The REST API's workspace state machine on the in-memory FakeRuntime: the whole hub app
(middleware, auth, manager, store) in-process, no Docker, a few milliseconds a request
(the ``api`` fixture is in tests/web/conftest.py)."""

from __future__ import annotations

import asyncio

import httpx

from labspace.testing import FakeRuntime
from labspace.testing.fakeruntime import ENGINE_DOWN


async def settle(client: httpx.AsyncClient, name: str) -> dict[str, object]:
    for _ in range(200):  # bounded: 200 x 10 ms
        body: dict[str, object] = (await client.get(f"/hub/api/workspaces/ada/{name}")).json()
        if body["state"] not in ("pending", "starting", "stopping"):
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"ada/{name} did not settle: {body}")


async def test_create_start_stop_delete(api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, runtime = api
    made = await client.post("/hub/api/workspaces",
                             json={"name": "lab", "template": "jupyterlab", "start": False})
    assert made.status_code == 201 and made.json()["state"] == "stopped"
    started = await client.post("/hub/api/workspaces/ada/lab/start")
    assert started.status_code == 200 and started.json()["state"] in ("pending", "starting")
    assert (await settle(client, "lab"))["state"] == "running"
    again = await client.post("/hub/api/workspaces/ada/lab/start")  # already there: no-op
    assert again.json()["state"] == "running"
    stopped = await client.post("/hub/api/workspaces/ada/lab/stop")
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    events = (await client.get("/hub/api/workspaces/ada/lab/events",
                               params={"follow": "false"})).text
    for step in ("queued", "container created", "app answering", "ready", "stopped"):
        assert step in events, step
    assert (await client.delete("/hub/api/workspaces/ada/lab")).status_code == 204
    assert (await client.get("/hub/api/workspaces/ada/lab")).status_code == 404
    assert runtime.containers == {}


async def test_engine_down_shows_as_a_failed_start(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, runtime = api
    runtime.engine_down = True
    made = await client.post("/hub/api/workspaces", json={"name": "off", "template": "jupyterlab"})
    assert made.status_code == 201
    failed = await settle(client, "off")
    assert failed["state"] == "failed" and ENGINE_DOWN in str(failed["message"])
    runtime.engine_down = False
    await client.post("/hub/api/workspaces/ada/off/start")
    assert (await settle(client, "off"))["state"] == "running"
