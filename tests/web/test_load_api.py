"""The load page's API over real HTTP: the hub app served by uvicorn on loopback (an
in-process ASGI client would buffer an endless stream), workspaces on the FakeRuntime
(their use is measured against real containers in tests/load/test_collector.py).

The server-sent events' framing, who sees what, refusals (no login, another origin, too
many streams, a session that ends mid-stream) and a client that stops reading."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from labspace.config import Settings
from labspace.hub import Hub
from labspace.identity.tokens import issue_token, revoke_token
from labspace.testing import FakeRuntime
from labspace.web import load as load_api
from labspace.web.app import create_app
from labspace.workspaces.states import State

EVENTS = "/hub/api/load/events"


@dataclass
class Served:
    url: str
    hub: Hub

    async def token(self, name: str, *, admin: bool = False, kind: str = "api") -> str:
        try:
            user = await self.hub.users.get(name)
        except Exception:
            user = await self.hub.users.create(name, is_admin=admin)
        async with self.hub.db.session() as session:
            return await issue_token(session, user, kind=kind, max_age=3600)

    async def client(self, name: str, *, admin: bool = False) -> httpx.AsyncClient:
        token = await self.token(name, admin=admin)
        return httpx.AsyncClient(base_url=self.url, timeout=10.0,
                                 headers={"Authorization": f"Bearer {token}"})

    async def running(self, owner: str, name: str) -> None:
        try:
            await self.hub.users.get(owner)
        except Exception:
            await self.hub.users.create(owner)
        await self.hub.create_workspace(owner, name, "jupyterlab", by_admin=True)
        await self.hub.start_workspace(owner, name, by_admin=True)
        for _ in range(200):
            if (await self.hub.store.get(owner, name)).state == State.RUNNING:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{owner}/{name} did not start")


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    listener = socket.socket()
    # Connections inherit a small send buffer: the kernel hides less of a stalled reader.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    app = create_app(Settings(data_dir=tmp_path / "data", start_timeout=5, load_interval=0.5,
                              public_url=f"http://127.0.0.1:{port}"), FakeRuntime())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", app.state.hub)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        listener.close()


async def read_events(source: httpx.Response | AsyncIterator[str], count: int,
                      timeout: float = 10.0) -> list[dict[str, str]]:
    """The next ``count`` events (comments included, as {"comment": ...}) of a stream, or
    those until it ends. Pass ``response.aiter_lines()`` to read one stream twice."""
    lines = source.aiter_lines() if isinstance(source, httpx.Response) else source
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}

    async def read() -> None:
        async for line in lines:
            if line == "":
                if current:
                    events.append(dict(current))
                    current.clear()
                if len(events) >= count:
                    return
            elif line.startswith(":"):
                current["comment"] = line[1:].strip()
            else:
                field, _, value = line.partition(":")
                current[field] = value.removeprefix(" ")

    await asyncio.wait_for(read(), timeout)
    return events


def workspaces(snapshot: dict[str, object]) -> set[str]:
    servers = snapshot["servers"]
    assert isinstance(servers, list)
    return {f"{w['owner']}/{w['name']}" for s in servers for w in s["workspaces"]}


async def test_the_stream_sends_a_snapshot_at_once_then_updates(served: Served) -> None:
    await served.running("ada", "one")
    async with await served.client("ada") as ada, ada.stream("GET", EVENTS) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        first, second = await read_events(response, 2)
    assert first["event"] == "load" and first["retry"] == "3000"
    assert int(second["id"]) > int(first["id"])
    for event in (first, second):
        snapshot = json.loads(event["data"])
        assert snapshot["interval"] == 0.5
        assert workspaces(snapshot) == {"ada/one"}
        server = snapshot["servers"][0]
        assert server["workspace_count"] == 1
        assert {"cpus", "memory_total_bytes", "gpus", "measured"} <= server.keys()


async def test_members_see_their_own_workspaces_and_admins_everyone(served: Served) -> None:
    await served.running("ada", "mine")
    await served.running("bob", "his")
    async with await served.client("ada") as ada, await served.client(
            "boss", admin=True) as boss:
        for_ada = (await ada.get("/hub/api/load")).json()
        for_boss = (await boss.get("/hub/api/load")).json()
        async with ada.stream("GET", EVENTS) as response:
            streamed = json.loads((await read_events(response, 1))[0]["data"])
        async with boss.stream("GET", EVENTS) as response:
            streamed_all = json.loads((await read_events(response, 1))[0]["data"])
    assert workspaces(for_ada) == workspaces(streamed) == {"ada/mine"}
    assert "bob" not in json.dumps(streamed)
    assert for_ada["servers"][0]["workspace_count"] == 2  # the server's total, no names
    assert workspaces(for_boss) == workspaces(streamed_all) == {"ada/mine", "bob/his"}


async def test_nobody_logged_in_gets_nothing(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as anonymous:
        assert (await anonymous.get(EVENTS)).status_code == 401
        assert (await anonymous.get("/hub/api/load")).status_code == 401
        page = await anonymous.get("/hub/load", headers={"Accept": "text/html"})
        assert page.status_code == 303 and "/hub/login" in page.headers["location"]
    assert served.hub.load.watching == 0


async def test_a_page_of_another_origin_is_refused(served: Served) -> None:
    cookie = await served.token("ada", kind="session")
    jar = {served.hub.settings.session_cookie: cookie}
    async with httpx.AsyncClient(base_url=served.url, cookies=jar) as browser:
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "same-site"},
                        {"Sec-Fetch-Site": "cross-site"}):
            assert (await browser.get(EVENTS, headers=headers)).status_code == 403
            assert (await browser.get("/hub/api/load", headers=headers)).status_code == 403
        own = await browser.get("/hub/api/load", headers={"Sec-Fetch-Site": "same-origin"})
        assert own.status_code == 200
    assert served.hub.load.watching == 0


async def test_one_user_may_have_only_so_many_streams(served: Served) -> None:
    cap = served.hub.load.streams_per_user
    async with await served.client("ada") as ada, await served.client("bob") as bob:
        streams = [ada.stream("GET", EVENTS) for _ in range(cap)]
        opened = [await stream.__aenter__() for stream in streams]
        try:
            assert all(response.status_code == 200 for response in opened)
            refused = await ada.get(EVENTS)
            assert refused.status_code == 429
            async with bob.stream("GET", EVENTS) as other:  # the cap is per user
                assert other.status_code == 200
        finally:
            for stream in streams:
                await stream.__aexit__(None, None, None)
    for _ in range(100):  # the server notices the closed connections
        if served.hub.load.watching == 0:
            break
        await asyncio.sleep(0.05)
    assert served.hub.load.watching == 0


async def test_a_revoked_session_ends_its_stream(served: Served,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_api, "AUTH_RECHECK", 0.5)
    token = await served.token("ada")
    async with httpx.AsyncClient(base_url=served.url, timeout=10.0, headers={
            "Authorization": f"Bearer {token}"}) as ada, ada.stream("GET", EVENTS) as response:
        lines = response.aiter_lines()
        await read_events(lines, 1)
        async with served.hub.db.session() as session:
            await revoke_token(session, token)
        rest = await read_events(lines, 20)
    ended = [e for e in rest if e.get("event") == "end"]
    assert ended and "log in again" in json.loads(ended[0]["data"])["reason"]


async def test_heartbeats_between_snapshots(served: Served,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_api, "HEARTBEAT", 0.1)
    async with await served.client("ada") as ada, ada.stream("GET", EVENTS) as response:
        events = await read_events(response, 8)
    assert any(e.get("comment") == "keepalive" for e in events)


async def test_a_client_that_stops_reading_gets_the_newest_not_a_backlog(
        served: Served) -> None:
    """A page that reads nothing for a while costs the hub one frame and a bounded
    buffer, not every frame since: when it reads again it skips to the newest; the
    others are served on time meanwhile."""
    await asyncio.gather(*(served.running(f"user{n:03d}", "w") for n in range(100)))
    token = await served.token("boss", admin=True)
    host, port = served.url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    await loop.sock_connect(slow, (host, int(port)))
    await loop.sock_sendall(slow, (f"GET {EVENTS} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                                   f"Authorization: Bearer {token}\r\n\r\n").encode())
    try:
        async with await served.client("boss", admin=True) as fast, fast.stream(
                "GET", EVENTS) as response:
            began = served.hub.load.ticks
            events = await read_events(response, 24, timeout=60)  # ~12 s of ticks
            ticks = served.hub.load.ticks - began
        newest = int(events[-1]["id"])
        size = len(events[-1]["data"])
        assert ticks >= 20 and size > 10_000

        received = bytearray()  # now read what the hub kept for it, up to the newest
        ids: list[int] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (ids and ids[-1] >= newest):
            with contextlib.suppress(TimeoutError):
                received += await asyncio.wait_for(loop.sock_recv(slow, 1 << 20), 1)
            ids = [int(line[4:]) for line in received.decode(errors="replace").split("\n")
                   if line.startswith("id: ")]
        assert ids and ids[-1] >= newest  # it caught up with the newest
        skipped = [later for earlier, later in itertools.pairwise(ids)
                   if later > earlier + 1]
        assert skipped, ids  # frames it had no time for were dropped, not queued
        assert len(received) < ticks * size / 2, (len(received), ticks, size)
    finally:
        slow.close()
