"""`labspace quota` end to end against the hub app in-process: the CLI's own Client over a
transport that hands each request to the app in a portal's event loop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from typer.testing import CliRunner

from labspace.cli import quotas
from labspace.cli.client import API_PREFIX, Client
from labspace.cli.main import app
from labspace.config import Settings
from labspace.errors import InvalidInput, NotFound, PermissionDenied
from labspace.hub import Hub
from labspace.identity.tokens import issue_token
from labspace.testing import FakeRuntime
from labspace.web.app import create_app

runner = CliRunner()


class PortalTransport(httpx.BaseTransport):
    """A synchronous transport into an ASGI app that runs in ``portal``'s loop."""

    def __init__(self, portal: BlockingPortal, app: FastAPI) -> None:
        self.portal = portal
        self.asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            answer = await self.asgi.handle_async_request(request)
            body = b"".join([chunk async for chunk in answer.stream])  # type: ignore[union-attr]
            return httpx.Response(answer.status_code, headers=answer.headers, content=body)

        return self.portal.call(send)


class InProcess(Client):
    """The CLI's client, talking to the in-process hub."""

    def __init__(self, portal: BlockingPortal, app: FastAPI, token: str) -> None:
        self.base_url, self.token = "http://hub", token
        self._http = httpx.Client(transport=PortalTransport(portal, app),
                                  base_url="http://hub" + API_PREFIX,
                                  headers={"Authorization": f"Bearer {token}"})


Hosted = tuple[BlockingPortal, FastAPI]


@pytest.fixture
def hub_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hosted]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    made = create_app(Settings(data_dir=tmp_path / "data"), FakeRuntime())
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
            made.router.lifespan_context(made)):
        yield portal, made


def log_in_as(monkeypatch: pytest.MonkeyPatch, hub_app: Hosted, name: str, *,
              admin: bool) -> None:
    """Point `labspace quota` at the in-process hub with a token of a new user ``name``."""
    portal, made = hub_app
    hub: Hub = made.state.hub

    async def token() -> str:
        user = await hub.users.create(name, is_admin=admin)
        async with hub.db.session() as session:
            return await issue_token(session, user, kind="api")

    value = portal.call(token)
    monkeypatch.setattr(quotas, "connect", lambda url=None: InProcess(portal, made, value))


def test_set_list_unset(hub_app: Hosted, monkeypatch: pytest.MonkeyPatch) -> None:
    log_in_as(monkeypatch, hub_app, "root-admin", admin=True)
    done = runner.invoke(app, ["quota", "set", "group", "PhD Students", "--cpus", "8",
                               "--memory", "32g", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["memory_bytes"] == 32 * 1024**3
    done = runner.invoke(app, ["quota", "set", "user", "alice", "--running", "2"])
    assert done.exit_code == 0 and "alice" in done.output and "0 / 2" in done.output
    listed = runner.invoke(app, ["quota", "list"])
    assert listed.exit_code == 0
    assert "PhD Students" in listed.output and "0 / 8" in listed.output
    data = json.loads(runner.invoke(app, ["quota", "list", "--json"]).output)
    assert [(q["scope"], q["name"]) for q in data] == [("user", "alice"),
                                                       ("group", "PhD Students")]
    gone = runner.invoke(app, ["quota", "unset", "group", "PhD Students"])
    assert gone.exit_code == 0 and "removed" in gone.output
    again = runner.invoke(app, ["quota", "unset", "group", "PhD Students"])
    assert isinstance(again.exception, NotFound)
    assert again.exception.message == "group PhD Students has no quota"


def test_clear_errors(hub_app: Hosted, monkeypatch: pytest.MonkeyPatch) -> None:
    log_in_as(monkeypatch, hub_app, "root-admin", admin=True)
    nothing = runner.invoke(app, ["quota", "set", "user", "alice"])
    assert isinstance(nothing.exception, InvalidInput)
    assert "--cpus, --memory, --gpus, --running" in nothing.exception.message
    scope = runner.invoke(app, ["quota", "set", "team", "x", "--cpus", "1"])
    assert isinstance(scope.exception, InvalidInput) and "user or group" in str(scope.exception)
    negative = runner.invoke(app, ["quota", "set", "user", "alice", "--cpus", "-1"])
    assert negative.exit_code == 2 and "greater than or equal to 0" in negative.output
    huge = runner.invoke(app, ["quota", "set", "user", "alice", "--memory", "9000t"])
    assert isinstance(huge.exception, InvalidInput) and "1 PiB" in huge.exception.message


def test_members_see_only_their_own(hub_app: Hosted,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    log_in_as(monkeypatch, hub_app, "alice", admin=False)
    refused = runner.invoke(app, ["quota", "list"])
    assert isinstance(refused.exception, PermissionDenied)
    mine = runner.invoke(app, ["quota", "list", "--mine"])
    assert mine.exit_code == 0 and "no quotas bind you" in mine.output
