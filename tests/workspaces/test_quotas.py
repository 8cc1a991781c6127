"""Quotas at the start of a workspace, on the FakeRuntime and a real database: refused
before anything is made, with a message naming the quota; concurrent starts never both take
the last room; group quotas follow the members' groups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from labspace.config import Settings
from labspace.errors import QuotaExceeded
from labspace.gpus import NvmlSource
from labspace.hub import Hub, open_hub
from labspace.policy.quotas import Capacity, QuotaLimits, Resources
from labspace.templates.model import LimitSpec
from labspace.testing import FakeRuntime
from labspace.testing.nvml import FakeNvml
from labspace.workspaces.states import State

GIB = 1024**3
RECORDINGS = Path(__file__).parents[1] / "gpus" / "recordings"


@pytest.fixture
async def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hub]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    # Eight recorded GPUs: starts that ask for GPUs get them (the allocator's own tests are
    # in tests/gpus); quotas count what was asked for.
    gpus = NvmlSource(FakeNvml.load(RECORDINGS / "8gpus-mig-off.json"))
    made = await open_hub(Settings(data_dir=tmp_path / "data", start_timeout=2),
                          FakeRuntime(), gpu_source=gpus)
    made.quotas.capacity = Capacity(cpus=32, memory_bytes=128 * GIB)  # not this machine's
    for name in ("ada", "bob"):
        await made.users.create(name)
    base = await made.templates.get("jupyterlab")
    for name, limits in {"c4": LimitSpec(cpus=4, memory="8g"),
                         "g1": LimitSpec(cpus=1, memory="1g", gpus=1),
                         "shared": LimitSpec(cpus=1, memory="1g", shared_gpu=True),
                         "open": LimitSpec()}.items():
        await made.templates.add(base.model_copy(update={"name": name, "limits": limits}))
    yield made
    await made.close()


async def start(hub: Hub, owner: str, name: str, template: str = "c4") -> State:
    record = await hub.manager.create(owner, name, template)
    await hub.manager.start(owner, name)
    await hub.manager.wait_settled(record.id)
    return (await hub.store.get(owner, name)).state


async def refused(hub: Hub, owner: str, name: str, template: str = "c4") -> str:
    """Start ``name`` expecting a refusal; check nothing of it was made."""
    record = await hub.manager.create(owner, name, template)
    containers = dict(hub.runtime.containers)  # type: ignore[attr-defined]
    with pytest.raises(QuotaExceeded) as error:
        await hub.manager.start(owner, name)
    after = await hub.store.get(owner, name)
    assert after.state == State.STOPPED and after.container_id is None
    assert await hub.store.instances(record.id) == []
    assert hub.runtime.containers == containers  # type: ignore[attr-defined]
    assert not hub.manager.busy(record.id)
    return error.value.message


async def join(hub: Hub, user: str, *groups: str) -> None:
    await hub.users.update(user, groups=[{"name": group, "gid": None} for group in groups])


@pytest.mark.parametrize(("limits", "template", "message"), [
    (QuotaLimits(cpus=10), "c4", "user ada may use at most 10 CPUs at once and uses 8 CPUs; "
     "this workspace asks for 4 CPUs: stop one first"),
    (QuotaLimits(memory_bytes=20 * GIB), "c4", "user ada may use at most 20 GiB of memory "
     "at once and uses 16 GiB; this workspace asks for 8 GiB: stop one first"),
    (QuotaLimits(gpus=2), "g1", "user ada may use at most 2 GPUs at once and uses 2 GPUs; "
     "this workspace asks for 1 GPU: stop one first"),
    (QuotaLimits(running=2), "c4", "user ada may run at most 2 workspace(s) at once and "
     "runs 2: stop one first"),
])
async def test_a_users_quota_refuses_the_start_that_would_pass_it(
        hub: Hub, limits: QuotaLimits, template: str, message: str) -> None:
    await hub.quotas.set("user", "ada", limits, by="root")
    assert await start(hub, "ada", "one", template) == State.RUNNING
    assert await start(hub, "ada", "two", template) == State.RUNNING
    assert await refused(hub, "ada", "three", template) == message
    assert await start(hub, "bob", "his", template) == State.RUNNING  # bob has no quota
    await hub.manager.stop("ada", "two")  # room again
    assert await start(hub, "ada", "four", template) == State.RUNNING


@pytest.mark.parametrize(("limits", "template", "message"), [
    (QuotaLimits(cpus=8), "c4", "group phd may use at most 8 CPUs at once and its members "
     "use 8 CPUs; this workspace asks for 4 CPUs: stop one first"),
    (QuotaLimits(memory_bytes=12 * GIB), "c4", "group phd may use at most 12 GiB of memory "
     "at once and its members use 16 GiB; this workspace asks for 8 GiB: stop one first"),
    (QuotaLimits(gpus=2), "shared", "group phd may use at most 2 GPUs at once and its "
     "members use 2 GPUs; this workspace asks for 1 GPU: stop one first"),
    (QuotaLimits(running=2), "c4", "group phd may run at most 2 workspace(s) at once and its "
     "members run 2: stop one first"),
])
async def test_a_groups_quota_counts_all_its_members(
        hub: Hub, limits: QuotaLimits, template: str, message: str) -> None:
    await join(hub, "ada", "phd", "staff")
    await join(hub, "bob", "phd")
    await hub.quotas.set("group", "phd", limits, by="root")
    assert await start(hub, "ada", "one", template) == State.RUNNING
    if limits.memory_bytes:  # 12 GiB: a second 8 GiB workspace passes it already
        await hub.quotas.set("group", "phd", QuotaLimits(), by="root")
    assert await start(hub, "bob", "two", template) == State.RUNNING
    await hub.quotas.set("group", "phd", limits, by="root")
    assert await refused(hub, "bob", "three", template) == message
    assert await refused(hub, "ada", "four", template) == message


async def test_an_admin_starting_for_someone_is_held_to_their_quota(hub: Hub) -> None:
    await hub.quotas.set("user", "ada", QuotaLimits(running=0), by="root")
    await hub.create_workspace("ada", "lab", "c4", by_admin=True)
    with pytest.raises(QuotaExceeded, match="user ada may run at most 0"):
        await hub.start_workspace("ada", "lab", by_admin=True)


async def test_concurrent_starts_never_both_take_the_last_room(hub: Hub) -> None:
    await hub.quotas.set("user", "ada", QuotaLimits(running=3), by="root")
    hub.runtime.start_delay = 0.05  # type: ignore[attr-defined]
    records = [await hub.manager.create("ada", f"w{i}", "c4") for i in range(10)]
    outcomes = await asyncio.gather(*(hub.manager.start("ada", record.name)
                                      for record in records), return_exceptions=True)
    assert sum(isinstance(outcome, QuotaExceeded) for outcome in outcomes) == 7
    assert all(not isinstance(outcome, BaseException) or isinstance(outcome, QuotaExceeded)
               for outcome in outcomes)
    for record in records:
        await hub.manager.wait_settled(record.id)
    states = [(await hub.store.get("ada", record.name)).state for record in records]
    assert states.count(State.RUNNING) == 3 and states.count(State.STOPPED) == 7
    assert len(hub.runtime.containers) == 3  # type: ignore[attr-defined]


async def test_concurrent_group_starts_share_the_room(hub: Hub) -> None:
    """Two members at once against their group's 8 CPUs: 2 workspaces of 4, whoever asks."""
    await join(hub, "ada", "phd")
    await join(hub, "bob", "phd")
    await hub.quotas.set("group", "phd", QuotaLimits(cpus=8), by="root")
    records = [await hub.manager.create(owner, f"w{i}", "c4")
               for owner in ("ada", "bob") for i in range(3)]
    outcomes = await asyncio.gather(*(hub.manager.start(record.owner, record.name)
                                      for record in records), return_exceptions=True)
    assert sum(not isinstance(outcome, BaseException) for outcome in outcomes) == 2
    assert (await hub.quotas.usage())[0].in_use == Resources(8, 16 * GIB, 0, 2)


async def test_group_quotas_follow_group_changes(hub: Hub) -> None:
    await join(hub, "bob", "phd")
    await hub.quotas.set("group", "phd", QuotaLimits(running=1), by="root")
    assert await start(hub, "bob", "his") == State.RUNNING
    assert await start(hub, "ada", "free") == State.RUNNING  # not in phd: not bound
    await join(hub, "ada", "phd")  # joins: bound now, and her running one counts
    (phd,) = await hub.quotas.usage()
    assert phd.in_use.running == 2
    assert "its members run 2" in await refused(hub, "ada", "more")
    await join(hub, "bob")  # bob leaves: only ada's counts
    assert (await hub.quotas.usage())[0].in_use.running == 1
    await hub.manager.stop("ada", "free")
    assert await start(hub, "ada", "again") == State.RUNNING
    assert [use.quota.key for use in await hub.quotas.of_user("ada")] == [("group", "phd")]
    assert await hub.quotas.of_user("bob") == []


async def test_use_is_what_the_workspace_was_started_with(hub: Hub) -> None:
    """A template edited after the start changes nothing for the running workspace; a
    workspace with no limit counts as the whole host."""
    await hub.quotas.set("user", "ada", QuotaLimits(cpus=20), by="root")
    assert await start(hub, "ada", "lab") == State.RUNNING
    c4 = await hub.templates.get("c4")
    await hub.templates.add(c4.model_copy(update={"limits": LimitSpec(cpus=1)}), replace=True)
    assert (await hub.quotas.usage())[0].in_use == Resources(4, 8 * GIB, 0, 1)
    message = await refused(hub, "ada", "big", "open")
    assert message.endswith("uses 4 CPUs; this workspace asks for 32 CPUs: stop one first")


async def test_a_start_asked_twice_counts_once(hub: Hub) -> None:
    await hub.quotas.set("user", "ada", QuotaLimits(running=1), by="root")
    record = await hub.manager.create("ada", "lab", "c4")
    hub.runtime.start_delay = 0.2  # type: ignore[attr-defined]
    await asyncio.gather(hub.manager.start("ada", "lab"), hub.manager.start("ada", "lab"))
    await hub.manager.wait_settled(record.id)
    assert (await hub.store.get("ada", "lab")).state == State.RUNNING


async def test_set_replace_and_unset(hub: Hub) -> None:
    made = await hub.quotas.set("group", "PhD Students", QuotaLimits(cpus=4), by="root")
    assert made.updated_by == "root" and made.in_use == Resources()
    await hub.quotas.set("group", "PhD Students", QuotaLimits(gpus=1), by="eve")
    (only,) = await hub.quotas.usage()
    assert only.quota.limits == QuotaLimits(gpus=1) and only.updated_by == "eve"
    await hub.quotas.unset("group", "PhD Students")
    assert await hub.quotas.usage() == []
