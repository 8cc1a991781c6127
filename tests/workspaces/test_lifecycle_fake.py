"""The lifecycle logic (manager, reconcile, states) on the in-memory FakeRuntime: the same
hub code as in production, no Docker, milliseconds per test. What only the engine can show
(limits, mounts, isolation) stays in the Docker tests beside this file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from labspace.config import Settings
from labspace.hub import Hub, open_hub
from labspace.testing import FakeRuntime
from labspace.testing.fakeruntime import ENGINE_DOWN, WAITING
from labspace.workspaces.reconcile import reconcile
from labspace.workspaces.states import State

HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def make_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[HubFactory]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    hubs: list[Hub] = []

    async def make(runtime: FakeRuntime, **settings: object) -> Hub:
        options = {"start_timeout": 2, **settings}
        hub = await open_hub(Settings(data_dir=tmp_path / "data", **options),  # type: ignore[arg-type]
                             runtime)
        hubs.append(hub)
        if not await hub.users.count():
            await hub.users.create("ada")
        return hub

    yield make
    for hub in hubs:
        await hub.close()


async def started(hub: Hub, name: str) -> str:
    record = await hub.manager.create("ada", name, "jupyterlab")
    await hub.manager.start("ada", name)
    await hub.manager.wait_settled(record.id)
    return (await hub.store.get("ada", name)).state


async def test_start_stop_delete_in_milliseconds(make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    hub = await make_hub(runtime)
    began = time.monotonic()
    assert await started(hub, "quick") == State.RUNNING
    record = await hub.store.get("ada", "quick")
    # The target is the endpoint the runtime reported for the app's port, not an address
    # the manager built.
    container = await runtime.inspect(record.container_id or "")
    assert container is not None and record.target == container.endpoints[8888]
    # The start is recorded: what it ran, where, and how to reach it.
    (instance,) = await hub.store.instances(record.id)
    assert instance.handle == record.container_id and instance.ended_at is None
    assert instance.endpoints == {"app": record.target}
    assert instance.runtime_state == container.state == {"engine": "fake"}  # the backend's own
    assert instance.spec["image_id"] == container.image_id and instance.spec["app"]["port"] == 8888
    assert (await hub.manager.stop("ada", "quick")).state == State.STOPPED
    assert (await hub.store.instances(record.id))[0].ended_at is not None
    await hub.manager.start("ada", "quick")  # a new start, a new instance
    await hub.manager.wait_settled(record.id)
    assert [i.ended_at is None for i in await hub.store.instances(record.id)] == [False, True]
    await hub.manager.delete("ada", "quick")
    assert runtime.containers == {}
    assert time.monotonic() - began < 5  # no engine, no image: milliseconds, with room for CI


async def test_a_crash_after_start_fails_with_the_logs(make_hub: HubFactory) -> None:
    hub = await make_hub(FakeRuntime(crash_after_start=True))
    assert await started(hub, "crashy") == State.FAILED
    message = (await hub.store.get("ada", "crashy")).message
    assert "exited (code 1)" in message and "the app crashed" in message


async def test_an_app_that_never_answers_times_out_with_its_logs(make_hub: HubFactory) -> None:
    runtime = FakeRuntime(never_healthy=True)
    hub = await make_hub(runtime, start_timeout=0.5)
    assert await started(hub, "deaf") == State.FAILED
    failed = await hub.store.get("ada", "deaf")
    assert "did not answer within" in failed.message
    assert "loading a very large model" in failed.message  # the app's last log lines
    # Stopped, and kept for its logs; a failed workspace is deleted cleanly.
    info = await runtime.inspect(failed.container_id or "")
    assert info is not None and not info.running
    await hub.manager.delete("ada", "deaf")
    assert runtime.containers == {}


async def test_engine_down_fails_the_start_with_the_engines_message(
        make_hub: HubFactory) -> None:
    runtime = FakeRuntime(engine_down=True)
    hub = await make_hub(runtime)
    assert await started(hub, "offline") == State.FAILED
    assert ENGINE_DOWN in (await hub.store.get("ada", "offline")).message
    runtime.engine_down = False  # the engine is back: the same workspace starts
    await hub.manager.start("ada", "offline")
    await hub.manager.wait_settled((await hub.store.get("ada", "offline")).id)
    assert (await hub.store.get("ada", "offline")).state == State.RUNNING


async def test_a_stop_cancels_a_slow_start(make_hub: HubFactory) -> None:
    runtime = FakeRuntime(start_delay=5)
    hub = await make_hub(runtime)
    record = await hub.manager.create("ada", "slow", "jupyterlab")
    await hub.manager.start("ada", "slow")
    await asyncio.sleep(0.2)  # inside the engine's slow start
    began = time.monotonic()
    assert (await hub.manager.stop("ada", "slow")).state == State.STOPPED
    assert time.monotonic() - began < 2.5  # not the 5 s the start would have taken
    assert not hub.manager.busy(record.id)
    assert not any(c.info.running for c in runtime.containers.values())
    runtime.start_delay = 0  # and it starts again
    await hub.manager.start("ada", "slow")
    await hub.manager.wait_settled(record.id)
    assert (await hub.store.get("ada", "slow")).state == State.RUNNING


async def test_many_workspaces_start_concurrently(make_hub: HubFactory) -> None:
    hub = await make_hub(FakeRuntime(start_delay=0.5), max_parallel_starts=20)
    names = [f"w{i}" for i in range(20)]
    began = time.monotonic()
    states = await asyncio.gather(*(started(hub, name) for name in names))
    assert set(states) == {State.RUNNING}
    # One after the other would take 20 x 0.5 s; together about 0.5 s (a loaded CI machine
    # adds some: the bound leaves room for it and still fails a serial start).
    assert time.monotonic() - began < 5


async def test_a_new_hub_adopts_running_workspaces_and_resumes_starts(
        make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    first = await make_hub(runtime)
    assert await started(first, "kept") == State.RUNNING
    await first.manager.create("ada", "halfway", "jupyterlab")
    await first.store.transition((await first.store.get("ada", "halfway")).id,
                                 State.PENDING, "queued")  # the hub died right after this
    await first.close()
    second = await make_hub(runtime)  # a new hub process on the same database and engine
    report = await reconcile(second.manager)
    assert "ada/kept" in report.adopted and "ada/halfway" in report.resumed
    await second.manager.wait_settled((await second.store.get("ada", "halfway")).id)
    assert (await second.store.get("ada", "halfway")).state == State.RUNNING
    assert (await second.store.get("ada", "kept")).state == State.RUNNING


async def test_reconcile_notices_a_container_that_died(make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    hub = await make_hub(runtime)
    assert await started(hub, "doomed") == State.RUNNING
    await runtime.kill((await hub.store.get("ada", "doomed")).container_id or "")
    report = await reconcile(hub.manager)
    assert "ada/doomed" in report.marked
    assert (await hub.store.get("ada", "doomed")).state == State.STOPPED
    assert await reconcile(hub.manager) == await reconcile(hub.manager)  # idempotent


async def test_reconcile_notices_a_container_removed_behind_its_back(
        make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    hub = await make_hub(runtime)
    assert await started(hub, "doomed") == State.RUNNING
    gone = (await hub.store.get("ada", "doomed")).container_id or ""
    await runtime.remove(gone)  # `docker rm -f` by someone else
    report = await reconcile(hub.manager)
    assert "ada/doomed" in report.marked
    marked = await hub.store.get("ada", "doomed")
    assert marked.state in (State.FAILED, State.STOPPED) and "outside labspace" in marked.message
    # It starts again in a fresh container.
    await hub.manager.start("ada", "doomed")
    await hub.manager.wait_settled(marked.id)
    again = await hub.store.get("ada", "doomed")
    assert again.state == State.RUNNING and again.container_id not in ("", None, gone)


async def test_a_start_waits_for_capacity_and_says_so(make_hub: HubFactory) -> None:
    hub = await make_hub(FakeRuntime(placement_delay=1.0))
    assert await started(hub, "queued") == State.RUNNING
    record = await hub.store.get("ada", "queued")
    messages = [event.message for event in await hub.store.events(record.id)]
    assert WAITING in messages  # shown while it waited, once
    assert messages.count(WAITING) == 1
    assert messages.index(WAITING) < messages.index("ready")
    # The node it was placed on once room appeared is recorded, and shown.
    (instance,) = await hub.store.instances(record.id)
    assert instance.node == record.node == "fake"


async def test_a_start_waiting_for_capacity_can_be_cancelled(make_hub: HubFactory) -> None:
    runtime = FakeRuntime(placement_delay=30)
    hub = await make_hub(runtime)
    record = await hub.manager.create("ada", "queued", "jupyterlab")
    await hub.manager.start("ada", "queued")
    for _ in range(100):  # bounded: until the wait is shown
        if (await hub.store.get("ada", "queued")).message == WAITING:
            break
        await asyncio.sleep(0.02)
    assert (await hub.store.get("ada", "queued")).message == WAITING
    began = time.monotonic()
    assert (await hub.manager.stop("ada", "queued")).state == State.STOPPED
    assert time.monotonic() - began < 2 and not hub.manager.busy(record.id)


async def test_a_start_that_never_finds_room_fails_after_the_placement_timeout(
        make_hub: HubFactory) -> None:
    hub = await make_hub(FakeRuntime(placement_delay=30), placement_timeout=0.5)
    assert await started(hub, "never") == State.FAILED
    message = (await hub.store.get("ada", "never")).message
    assert "not placed within" in message and WAITING in message
