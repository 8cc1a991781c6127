"""GPUs through the whole start path on the FakeRuntime: 50 starts on a 4-GPU node (never
one GPU twice, the rest wait saying so and start as GPUs come back), release on stop, crash
and delete, a restarted hub holding what the open instances recorded, and a workspace that
asked for none."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from labspace.config import Settings
from labspace.gpus import WAITING_FOR_A_GPU, NvmlSource
from labspace.hub import Hub, open_hub
from labspace.templates.model import LimitSpec
from labspace.testing import FakeRuntime
from labspace.testing.nvml import FakeNvml
from labspace.workspaces.reconcile import reconcile
from labspace.workspaces.states import State

RECORDINGS = Path(__file__).parent / "recordings"
HubFactory = Callable[..., Awaitable[Hub]]


def four_gpus() -> FakeNvml:
    return FakeNvml(json.loads((RECORDINGS / "8gpus-mig-off.json").read_text())["devices"][:4])


@pytest.fixture
async def make_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[HubFactory]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    hubs: list[Hub] = []

    async def make(runtime: FakeRuntime, nvml: FakeNvml, **settings: object) -> Hub:
        options = {"start_timeout": 5, "max_parallel_starts": 8, "gpu_cdi_dirs": [],
                   "reconcile_interval": 3600, **settings}
        hub = await open_hub(Settings(data_dir=tmp_path / "data", **options),  # type: ignore[arg-type]
                             runtime, gpu_source=NvmlSource(nvml))
        hubs.append(hub)
        if not await hub.users.count():
            await hub.users.create("ada")
            base = await hub.templates.get("jupyterlab")
            for name, limits in (("gpu", LimitSpec(gpus=1)), ("shared", LimitSpec(
                    shared_gpu=True))):
                await hub.templates.add(base.model_copy(update={
                    "name": name, "display_name": name, "limits": limits}), replace=False)
        return hub

    yield make
    for hub in hubs:
        await hub.close()


def held_now(runtime: FakeRuntime) -> list[str]:
    """The GPU device nodes of every running container (a GPU twice shows up twice)."""
    return [device for c in runtime.containers.values() if c.info.running
            for device in c.spec.devices if device[len("/dev/nvidia"):].isdigit()]


async def settle(hub: Hub, ids: list[int]) -> None:
    await asyncio.gather(*(hub.manager.wait_settled(i) for i in ids))


async def test_fifty_starts_on_four_gpus(make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    hub = await make_hub(runtime, four_gpus())
    ids = [(await hub.manager.create("ada", f"w{n}", "gpu")).id for n in range(50)]
    for n in range(50):
        await hub.manager.start("ada", f"w{n}")
    ran: set[str] = set()
    while len(ran) < 50:
        await asyncio.sleep(0.05)
        records = await hub.store.list(owner="ada")
        running = [r for r in records if r.state == State.RUNNING]
        devices = held_now(runtime)
        assert len(devices) == len(set(devices)) <= 4, devices  # never one GPU twice
        waiting = [r for r in records if r.state == State.PENDING]
        assert all(r.message == WAITING_FOR_A_GPU for r in waiting)
        if len(running) == 4 or not waiting:
            # what the API says: each holds one GPU of its own, and the instance records it
            for record in running:
                grant = hub.gpus.held_by(record.id)
                assert grant is not None and not grant.shared and len(grant.uuids) == 1
                (instance,) = [i for i in await hub.store.instances(record.id)
                               if i.ended_at is None]
                assert instance.devices == list(grant.uuids)
            for record in running:  # their turn is over: the next ones start
                await hub.manager.stop("ada", record.name)
                ran.add(record.name)
    await settle(hub, ids)
    assert hub.gpus.allocator.holding() == {} and hub.gpus.allocator.waiting == 0
    events = await hub.store.events(ids[-1])
    assert WAITING_FOR_A_GPU in [e.message for e in events]


async def test_a_crash_and_a_delete_give_the_gpu_back(make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    hub = await make_hub(runtime, four_gpus())
    ids = [(await hub.manager.create("ada", f"w{n}", "gpu")).id for n in range(6)]
    for n in range(6):
        await hub.manager.start("ada", f"w{n}")
    await settle(hub, ids[:4])
    assert [r.state for r in await hub.store.list(owner="ada")].count(State.RUNNING) == 4
    crashed = await hub.store.get("ada", "w0")
    await runtime.kill(crashed.container_id or "")  # the container exited behind our back
    await reconcile(hub.manager)  # sees it, marks it, and the GPU goes to w4
    await hub.manager.wait_settled(ids[4])
    assert (await hub.store.get("ada", "w4")).state == State.RUNNING
    assert hub.gpus.held_by(crashed.id) is None
    await hub.manager.delete("ada", "w1")
    await hub.manager.wait_settled(ids[5])
    assert (await hub.store.get("ada", "w5")).state == State.RUNNING
    assert len(held_now(runtime)) == len(set(held_now(runtime))) == 4


async def test_a_restarted_hub_never_hands_a_gpu_out_twice(make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    hub = await make_hub(runtime, four_gpus())
    for n in range(3):
        await hub.manager.create("ada", f"w{n}", "gpu")
        await hub.manager.start("ada", f"w{n}")
    await settle(hub, [r.id for r in await hub.store.list()])
    before = {r.id: hub.gpus.held_by(r.id) for r in await hub.store.list()}
    await hub.close()  # the workspaces keep running

    again = await make_hub(runtime, four_gpus())
    assert {wid: again.gpus.held_by(wid) for wid in before} == before
    await again.manager.create("ada", "late", "gpu")
    await again.manager.create("ada", "later", "gpu")
    await again.manager.start("ada", "late")
    await again.manager.start("ada", "later")
    late = await again.store.get("ada", "late")
    await again.manager.wait_settled(late.id)
    assert (await again.store.get("ada", "late")).state == State.RUNNING
    later = await again.store.get("ada", "later")
    assert (later.state, later.message) == (State.PENDING, WAITING_FOR_A_GPU)
    devices = held_now(runtime)
    assert len(devices) == len(set(devices)) == 4
    # reconcile keeps what the running ones hold; a stop hands it on
    await reconcile(again.manager)
    assert {wid: again.gpus.held_by(wid) for wid in before} == before
    await again.manager.stop("ada", "w0")
    await again.manager.wait_settled(later.id)
    assert (await again.store.get("ada", "later")).state == State.RUNNING
    for record in await again.store.list():
        if record.state == State.RUNNING:
            await again.manager.stop("ada", record.name)
    assert again.gpus.allocator.holding() == {}


async def test_shared_gpus_run_side_by_side_and_say_so(make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    nvml = FakeNvml(four_gpus().devices[:1] if four_gpus().devices else [])
    hub = await make_hub(runtime, nvml)
    for name in ("a", "b"):
        await hub.manager.create("ada", name, "shared")
        await hub.manager.start("ada", name)
    await settle(hub, [r.id for r in await hub.store.list()])
    records = await hub.store.list(owner="ada")
    assert [r.state for r in records] == [State.RUNNING, State.RUNNING]
    grants = [hub.gpus.held_by(r.id) for r in records]
    assert grants[0] == grants[1] and grants[0] is not None and grants[0].shared
    assert held_now(runtime) == ["/dev/nvidia0", "/dev/nvidia0"]
    (reading,) = await hub.gpus.readings()
    assert reading.shared and {h.label for h in reading.holders} == {"ada/a", "ada/b"}
    # a whole GPU asked for now waits: the one GPU is shared
    await hub.manager.create("ada", "whole", "gpu")
    await hub.manager.start("ada", "whole")
    await asyncio.sleep(0.1)
    assert (await hub.store.get("ada", "whole")).message == WAITING_FOR_A_GPU
    await hub.manager.stop("ada", "whole")


async def test_no_gpu_asked_none_given(make_hub: HubFactory) -> None:
    runtime = FakeRuntime()
    hub = await make_hub(runtime, four_gpus())
    await hub.manager.create("ada", "plain", "jupyterlab")
    await hub.manager.start("ada", "plain")
    record = await hub.store.get("ada", "plain")
    await hub.manager.wait_settled(record.id)
    (container,) = runtime.containers.values()
    assert container.spec.devices == [] and "CUDA_VISIBLE_DEVICES" not in container.spec.env
    assert container.spec.env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert not any("nvidia" in m.target for m in container.spec.mounts)
    assert hub.gpus.held_by(record.id) is None
    assert (await hub.store.instances(record.id))[0].devices == []


async def test_a_start_asking_more_gpus_than_the_host_has_fails_at_once(
        make_hub: HubFactory) -> None:
    hub = await make_hub(FakeRuntime(), FakeNvml.absent())
    await hub.manager.create("ada", "x", "gpu")
    await hub.manager.start("ada", "x")
    record = await hub.store.get("ada", "x")
    await hub.manager.wait_settled(record.id)
    record = await hub.store.get("ada", "x")
    assert record.state == State.FAILED and "this server has no GPUs" in record.message
