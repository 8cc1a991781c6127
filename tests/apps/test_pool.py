"""The pools on the FakeRuntime (real HTTP readiness, real database): spares kept ready,
claims atomic and fresh, the queue in order, capacity, culling, refresh, drain, and a
restarted hub that rebuilds its pools without leaking or handing out twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labspace.apps.model import AppDefinition, PoolSettings
from labspace.apps.pool import AppPools, AtCapacity, Claimed, NotHandingOut, Waiting
from labspace.apps.ratelimit import ClaimRate
from labspace.apps.service import AppService
from labspace.apps.store import AppStore
from labspace.config import Settings
from labspace.state.db import Database
from labspace.templates import builtin_templates
from labspace.templates.store import TemplateStore
from labspace.testing import FakeRuntime
from labspace.workspaces.activity import ActivitySnapshot


class Activity:
    """What the proxy would report: last use per claim key (settable by the test)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    async def __call__(self) -> ActivitySnapshot:
        return ActivitySnapshot(available=True, now=time.time(), since=0.0,
                                activity=dict(self.last))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[AppService, FakeRuntime, Activity]]:
    settings = Settings(data_dir=tmp_path / "data", start_timeout=5, app_pool_interval=0.05,
                        app_starts_at_once=8)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
    await db.migrate()
    templates = TemplateStore(db)
    await templates.seed(builtin_templates("labspace/jupyterlab:latest"))
    runtime, activity = FakeRuntime(), Activity()
    service = _service(settings, db, runtime, templates, activity)
    await service.pools.start()
    yield service, runtime, activity
    await service.pools.close()
    await runtime.close()
    await db.close()


def _service(settings: Settings, db: Database, runtime: FakeRuntime, templates: TemplateStore,
             activity: Activity) -> AppService:
    store = AppStore(db)
    return AppService(store, AppPools(settings, store, runtime, templates, activity),
                      templates, ClaimRate(1000, 1000))


def app(name: str = "intro", **pool: int) -> AppDefinition:
    return AppDefinition(name=name, template="jupyterlab", path="lab/tree/intro.ipynb",
                         pool=PoolSettings(**pool))


async def until(check: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def running(runtime: FakeRuntime) -> int:
    return sum(1 for c in runtime.containers.values() if c.info.running)


async def test_spares_are_kept_ready_and_a_claim_is_fresh(world) -> None:  # type: ignore[no-untyped-def]
    service, runtime, _ = world
    await service.add(app(spares=2), by="ada")
    pools = service.pools
    await until(lambda: len(pools.pool("intro").ready) == 2)
    first = await pools.claim("intro", browser="b1", address="10.0.0.1")
    assert isinstance(first, Claimed)
    assert first.url == f"/apps/intro/{first.slot}/lab/tree/intro.ipynb"
    second = await pools.claim("intro", browser="b2", address="10.0.0.2")
    assert isinstance(second, Claimed) and second.slot != first.slot
    again = await pools.claim("intro", browser="b1", address="10.0.0.1")
    assert isinstance(again, Claimed) and again.slot == first.slot  # the link again: its own
    assert again.token != first.token  # with a new cookie
    await until(lambda: len(pools.pool("intro").ready) == 2)  # replenished at once
    assert running(runtime) == 4
    status = await service.status("intro")
    assert (status.claimed, status.app.claims_total) == (2, 2)
    assert status.latency["count"] == 2


async def test_fifty_concurrent_claims_get_fifty_containers(world) -> None:  # type: ignore[no-untyped-def]
    service, _, _ = world
    await service.add(app(spares=50), by="ada")
    await until(lambda: len(service.pools.pool("intro").ready) == 50, 30)
    results = await asyncio.gather(*(service.pools.claim(
        "intro", browser=f"b{n}", address="10.0.0.1") for n in range(50)))
    assert all(isinstance(r, Claimed) for r in results)
    assert len({r.slot for r in results if isinstance(r, Claimed)}) == 50


async def test_an_empty_pool_queues_and_serves_in_order(world) -> None:  # type: ignore[no-untyped-def]
    service, runtime, _ = world
    runtime.start_delay = 0.3
    await service.add(app(spares=0), by="ada")
    pools = service.pools
    tickets = [await pools.claim("intro", browser=f"b{n}", address="10.0.0.1") for n in range(3)]
    assert [t.position for t in tickets if isinstance(t, Waiting)] == [1, 2, 3]
    served: list[int] = []

    async def wait(n: int, ticket: Waiting) -> None:
        while True:
            result = await pools.wait("intro", ticket.ticket, f"b{n}", 5)
            if isinstance(result, Claimed):
                served.append(n)
                return
    await asyncio.wait_for(asyncio.gather(*(wait(n, t) for n, t in enumerate(tickets)
                                            if isinstance(t, Waiting))), 20)
    assert sorted(served) == [0, 1, 2]
    with pytest.raises(Exception, match="expired"):
        await pools.wait("intro", tickets[0].ticket, "another-browser", 0.1)  # type: ignore[union-attr]


async def test_at_capacity_says_so(world) -> None:  # type: ignore[no-untyped-def]
    service, _, _ = world
    await service.add(app(spares=1, max_claimed=1), by="ada")
    await until(lambda: len(service.pools.pool("intro").ready) == 1)
    assert isinstance(await service.pools.claim("intro", browser="b1", address="a"), Claimed)
    with pytest.raises(AtCapacity, match="at capacity"):
        await service.pools.claim("intro", browser="b2", address="a")


async def test_idle_and_old_claims_are_culled_and_activity_keeps_one(world) -> None:  # type: ignore[no-untyped-def]
    service, runtime, activity = world
    await service.add(app(spares=3, idle_timeout=60, max_age=3600), by="ada")
    pools = service.pools
    await until(lambda: len(pools.pool("intro").ready) == 3)
    idle, busy, old = [await pools.claim("intro", browser=b, address="a") for b in "xyz"]
    assert isinstance(idle, Claimed) and isinstance(busy, Claimed) and isinstance(old, Claimed)
    pool = pools.pool("intro")
    ago = datetime.now(UTC) - timedelta(seconds=120)
    pool.claimed[idle.slot].claimed_at = ago
    pool.claimed[busy.slot].claimed_at = ago
    activity.last[f"claim:{busy.slot}"] = time.time()  # a WebSocket frame just now
    pool.claimed[old.slot].claimed_at = datetime.now(UTC) - timedelta(hours=2)
    await until(lambda: set(pool.claimed) == {busy.slot})
    assert pool.ended["idle"] == 1 and pool.ended["max age"] == 1
    await until(lambda: len([c for c in runtime.containers.values()
                             if c.spec.labels.get("org.labspace.slot") in
                             (idle.slot, old.slot)]) == 0)
    deadline = time.monotonic() + 10
    while (await service.status("intro")).app.culled_total < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_refresh_replaces_spares_and_leaves_claims(world) -> None:  # type: ignore[no-untyped-def]
    service, _, _ = world
    await service.add(app(spares=2), by="ada")
    pools = service.pools
    await until(lambda: len(pools.pool("intro").ready) == 2)
    claimed = await pools.claim("intro", browser="b", address="a")
    assert isinstance(claimed, Claimed)
    await until(lambda: len(pools.pool("intro").ready) == 2)
    old = {s.slot for s in pools.pool("intro").ready}
    await service.refresh("intro")
    await until(lambda: len(pools.pool("intro").ready) == 2
                and not old & {s.slot for s in pools.pool("intro").ready})
    assert claimed.slot in pools.pool("intro").claimed


async def test_drain_removes_spares_and_hands_out_nothing(world) -> None:  # type: ignore[no-untyped-def]
    service, runtime, _ = world
    await service.add(app(spares=2), by="ada")
    await until(lambda: len(service.pools.pool("intro").ready) == 2)
    await service.drain("intro")
    await until(lambda: not service.pools.pool("intro").ready and running(runtime) == 0)
    with pytest.raises(NotHandingOut):
        await service.pools.claim("intro", browser="b", address="a")
    await service.refresh("intro")  # a refresh ends the drain
    await until(lambda: len(service.pools.pool("intro").ready) == 2)


async def test_a_restarted_hub_rebuilds_its_pools(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    """Spares and claims survive; a half-started container and an unknown one are removed;
    nothing is handed out twice."""
    service, runtime, activity = world
    await service.add(app(spares=2), by="ada")
    pools = service.pools
    await until(lambda: len(pools.pool("intro").ready) == 2)
    claimed = await pools.claim("intro", browser="b", address="a")
    assert isinstance(claimed, Claimed)
    await until(lambda: len(pools.pool("intro").ready) == 2)
    spares = {s.slot for s in pools.pool("intro").ready}
    await pools.close()  # the hub goes away; the containers stay
    again = _service(pools.settings, service.store.db, runtime, service.templates, activity)
    await again.pools.start()
    try:
        pool = again.pools.pool("intro")
        assert set(pool.claimed) == {claimed.slot}
        assert {s.slot for s in pool.ready} == spares
        results = [await again.pools.claim("intro", browser=f"n{n}", address="a")
                   for n in range(2)]
        assert {r.slot for r in results if isinstance(r, Claimed)} == spares
        await until(lambda: len(pool.ready) == 2)
        live = {c.spec.labels["org.labspace.slot"] for c in runtime.containers.values()
                if c.info.running}
        assert live == {claimed.slot, *spares, *(s.slot for s in pool.ready)}
    finally:
        await again.pools.close()


async def test_delete_ends_everything(world) -> None:  # type: ignore[no-untyped-def]
    service, runtime, _ = world
    await service.add(app(spares=2), by="ada")
    await until(lambda: len(service.pools.pool("intro").ready) == 2)
    await service.pools.claim("intro", browser="b", address="a")
    await service.delete("intro")
    await until(lambda: running(runtime) == 0)
    assert await service.store.containers() == []


async def test_a_deleted_apps_late_writes_never_touch_the_next_apps_rows(tmp_path: Path) -> None:
    """SQLite gives a deleted row's id to the next insert: the removals of a deleted app's
    containers, finishing late, once deleted a new app's claim (the proxy then said "Session
    ended"; found by bench/claims.py). Rows are now found by their slot too."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
    await db.migrate()
    store = AppStore(db)
    try:
        old_app = await store.add(app("old"), by="admin")
        old = await store.new_container(old_app.id, "c" + "1" * 16, "s", 1, {})
        await store.delete("old")
        new_app = await store.add(app("new"), by="admin")
        new = await store.new_container(new_app.id, "c" + "2" * 16, "s", 1, {})
        assert (new_app.id, new.id) == (old_app.id, old.id)  # the premise: ids reused
        await store.ready(new)
        await store.claimed(new, claim_digest="d", browser="b", address="a")
        await store.ready(old)  # late writes about the forgotten container
        await store.forget([old])
        await store.count_culled(old_app)
        [row] = await store.containers()
        assert (row.slot, row.state) == (new.slot, "claimed")
        assert (await store.get("new")).culled_total == 0
    finally:
        await db.close()
