"""The REST API's workspace state machine on the in-memory FakeRuntime: the whole hub app
(middleware, auth, manager, store) in-process, no Docker, a few milliseconds a request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from labspace.config import Settings
from labspace.hub import Hub
from labspace.identity.tokens import issue_token
from labspace.testing import FakeRuntime
from labspace.testing.fakeruntime import ENGINE_DOWN
from labspace.web.app import create_app


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeRuntime]]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    runtime = FakeRuntime()
    app: FastAPI = create_app(Settings(data_dir=tmp_path / "data", start_timeout=2), runtime)
    async with app.router.lifespan_context(app):
        hub: Hub = app.state.hub
        user = await hub.users.create("ada")
        async with hub.db.session() as session:
            token = await issue_token(session, user, kind="api")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            yield client, runtime


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
