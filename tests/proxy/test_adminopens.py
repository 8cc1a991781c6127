"""An admin opening someone else's workspace through the proxy is recorded once per window;
the owner's own opens are not; the write never holds up a request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
import pytest

from labspace.audit import AuditLog
from labspace.proxy.adminopens import ACTION, AdminOpens
from labspace.proxy.dbsource import DatabaseRouteSource
from labspace.proxy.source import Principal, Route
from labspace.state.db import Database
from tests.proxy.conftest import (
    SECRET,
    ProxyFactory,
    StaticRouteSource,
    hub_app,
    serve,
    upstream_app,
)
from tests.proxy.conftest import Recorder as Upstream
from tests.proxy.test_dbsource import proxy_url


@dataclass
class AuditedSource(StaticRouteSource):
    entries: list[tuple[str, str, str, str]] = field(default_factory=list)

    async def record_audit(self, action: str, actor: str, target: str, address: str) -> None:
        self.entries.append((action, actor, target, address))


@pytest.mark.asyncio(loop_scope="session")
async def test_admin_open_recorded_once_and_never_for_the_owner(
        make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    up_runner, up_port = await serve(upstream_app(Upstream()))
    hub_runner, hub_port = await serve(hub_app(Upstream()))
    running = {"state": "running", "target": f"http://127.0.0.1:{up_port}",
               "secret_value": SECRET}
    source = AuditedSource(routes={("alice", "lab"): Route("alice", "lab", **running)},
                           principals={"alice-token": Principal("alice", False),
                                       "root-token": Principal("root", True)})
    try:
        url = await make_proxy(source, hub_port)
        for token in ("alice-token", "root-token", "root-token", "root-token"):
            async with client.get(f"{url}/user/alice/lab/json",
                                  headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200
        for _ in range(50):
            if source.entries:
                break
            await asyncio.sleep(0.02)
        assert source.entries == [(ACTION, "root", "alice/lab", "127.0.0.1")]
    finally:
        await up_runner.cleanup()
        await hub_runner.cleanup()


async def test_the_database_sink_writes_an_entry_the_hub_reads(db: Database) -> None:
    source = DatabaseRouteSource(await proxy_url(db))
    try:
        await source.record_audit(ACTION, "root", "alice/lab", "198.51.100.4")
    finally:
        await source.close()
    (entry,) = await AuditLog(db).query()
    assert (entry.action, entry.actor, entry.target, entry.address, entry.ok) == (
        ACTION, "root", "alice/lab", "198.51.100.4", True)
    assert entry.detail == {"via": "proxy"}


class SlowSink:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def record_audit(self, action: str, actor: str, target: str, address: str) -> None:
        self.calls += 1
        await self.release.wait()
        if actor == "broken":
            raise OSError("database is locked")


async def test_notes_are_bounded_deduplicated_and_retried_after_failure() -> None:
    now = [0.0]
    sink = SlowSink()
    opens = AdminOpens(sink, window=600, max_pending=2, clock=lambda: now[0])
    opens.note("root", "alice/lab", "a")  # returns at once, though the sink is stuck
    opens.note("root", "alice/lab", "a")  # within the window: nothing
    opens.note("broken", "bob/lab", "a")
    opens.note("root", "carol/lab", "a")  # two writes pending: dropped, not queued
    await asyncio.sleep(0)
    assert sink.calls == 2
    sink.release.set()
    await opens.drain()
    opens.note("broken", "bob/lab", "a")  # its write failed: tried again
    now[0] = 601.0
    opens.note("root", "alice/lab", "a")  # a new window
    await opens.drain()
    assert sink.calls == 4
