"""Fixtures of the web tests: the whole hub app in-process on the FakeRuntime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from labspace.config import Settings
from labspace.hub import Hub
from labspace.identity.tokens import issue_token
from labspace.testing import FakeRuntime
from labspace.web.app import create_app


async def _in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, admin: bool,
                      **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FakeRuntime]]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    runtime = FakeRuntime()
    app: FastAPI = create_app(Settings(data_dir=tmp_path / "data", start_timeout=2, **settings),
                              runtime)
    async with app.router.lifespan_context(app):
        hub: Hub = app.state.hub
        user = await hub.users.create("ada", is_admin=admin)
        async with hub.db.session() as session:
            token = await issue_token(session, user, kind="api")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            yield client, runtime


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeRuntime]]:
    """The API as ada, an ordinary user."""
    async for pair in _in_process(tmp_path, monkeypatch, admin=False):
        yield pair


@pytest.fixture
async def admin_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeRuntime]]:
    """The API as ada, an administrator."""
    async for pair in _in_process(tmp_path, monkeypatch, admin=True):
        yield pair


@pytest.fixture
async def apps_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeRuntime]]:
    """The API as ada, an ordinary user, on a hub with apps_domain (hosts per workspace)."""
    async for pair in _in_process(tmp_path, monkeypatch, admin=False,
                                  public_url="http://lab.localhost:8000",
                                  apps_domain="apps.lab.localhost"):
        yield pair


def hub_of(api: httpx.AsyncClient) -> Hub:
    """The Hub behind an in-process client (to set up what the API does not)."""
    transport = api._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    hub: Hub = app.state.hub
    return hub


async def client_as(api: httpx.AsyncClient, name: str, *,
                    admin: bool = False) -> httpx.AsyncClient:
    """A client of the same in-process hub as a new user ``name``, with an API token."""
    hub = hub_of(api)
    user = await hub.users.create(name, is_admin=admin)
    async with hub.db.session() as session:
        token = await issue_token(session, user, kind="api")
    return httpx.AsyncClient(transport=api._transport, base_url="http://hub",
                             headers={"Authorization": f"Bearer {token}"})


async def browser_as(api: httpx.AsyncClient, name: str) -> httpx.AsyncClient:
    """A browser of the same in-process hub logged in as the existing user ``name``: a
    session cookie, asking for HTML, and sending the hub's own Origin as browsers do."""
    hub = hub_of(api)
    async with hub.db.session() as session:
        cookie = await issue_token(session, await hub.users.get(name), kind="session",
                                   max_age=3600)
    return httpx.AsyncClient(transport=api._transport, base_url="http://hub",
                             cookies={hub.settings.session_cookie: cookie},
                             headers={"Accept": "text/html", "Origin": "http://hub"})
