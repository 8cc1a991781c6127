"""The idle culler's decisions (issue 10), on the real hub services with the FakeRuntime.

What the proxy would say comes from ScriptedActivity (labspace.testing.activity: a snapshot
the test writes: when each workspace was last used, which tunnels are open, whether the proxy
answers at all), and
time from a clock the test moves forward; CPU use from CpuRuntime, a FakeRuntime whose
containers report a chosen figure. The proxy's own side: tests/proxy/test_activity.py;
real containers and the real proxy: test_idle_stack.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from labspace.audit import AuditQuery
from labspace.config import Settings
from labspace.hub import Hub, open_hub
from labspace.runtime.base import ContainerStats
from labspace.templates.store import parse_template
from labspace.testing import FakeRuntime
from labspace.testing.activity import ScriptedActivity
from labspace.workspaces.activity import workspace_key
from labspace.workspaces.culler import CULLED
from labspace.workspaces.states import State

HOUR = 3600.0
Start = Callable[..., Awaitable[Hub]]


class CpuRuntime(FakeRuntime):
    """A FakeRuntime whose containers use ``cpu`` percent of a core (a training run)."""

    def __init__(self, cpu: float) -> None:
        super().__init__()
        self.cpu = cpu

    async def stats(self, container_id: str) -> ContainerStats:
        await super().stats(container_id)
        return ContainerStats(self.cpu, 1024 * 1024, None)


class Later:
    """The culler's clock, moved forward by the test."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
async def make_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Start]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    hubs: list[Hub] = []

    async def make(runtime: FakeRuntime | None = None, **settings: object) -> Hub:
        options = {"start_timeout": 2, "idle_check_interval": 0, **settings}
        hub = await open_hub(Settings(data_dir=tmp_path / "data", **options),  # type: ignore[arg-type]
                             runtime or FakeRuntime())
        hubs.append(hub)
        await hub.users.create("ada")
        hub.idle.activity = ScriptedActivity()
        hub.idle.clock = Later()
        for name, idle in (("idle-1h", {"idle_stop_after": "1h"}),
                           ("idle-cpu", {"idle_stop_after": "1h", "idle_cpu_below": 5})):
            spec = (await hub.templates.get("jupyterlab")).model_dump()
            await hub.templates.add(parse_template({**spec, "name": name, **idle}))
        return hub

    yield make
    for hub in hubs:
        await hub.close()


async def running(hub: Hub, name: str, template: str = "idle-1h", profile: str = "") -> int:
    record = await hub.manager.create("ada", name, template, profile)
    await hub.manager.start("ada", name)
    await hub.manager.wait_settled(record.id)
    assert (await hub.store.get("ada", name)).state == State.RUNNING
    return record.id


def scripted(hub: Hub) -> ScriptedActivity:
    assert isinstance(hub.idle.activity, ScriptedActivity)
    return hub.idle.activity


def later(hub: Hub, hours: float) -> None:
    assert isinstance(hub.idle.clock, Later)
    hub.idle.clock.ahead = hours * HOUR


async def state(hub: Hub, name: str) -> State:
    return (await hub.store.get("ada", name)).state


async def test_a_workspace_idle_past_its_policy_is_stopped_and_audited(make_hub: Start) -> None:
    hub = await make_hub()
    await running(hub, "idle")
    await running(hub, "plain", template="jupyterlab")  # no policy: never stopped
    later(hub, 0.5)
    assert await hub.idle.check() == []
    later(hub, 2)
    assert await hub.idle.check() == ["ada/idle"]
    record = await hub.store.get("ada", "idle")
    assert record.state == State.STOPPED
    assert record.message.startswith("stopped: idle 2h 0m: no request or WebSocket message "
                                     "through the proxy, no SSH session")
    assert await state(hub, "plain") == State.RUNNING
    (entry,) = await hub.audit.query(AuditQuery(action=CULLED))
    assert entry.action == "workspace.culled" and entry.target == "ada/idle"
    assert entry.actor == "" and entry.detail["reason"].startswith("idle 2h 0m")
    assert entry.detail["policy"] == "after 1h without use"
    assert 2 * HOUR - 60 < entry.detail["idle_seconds"] <= 2 * HOUR + 60
    # The audit filters find it as themselves, by their family, and by the owner.
    assert await hub.audit.query(AuditQuery(action="workspace")) == [entry]
    assert await hub.audit.query(AuditQuery(user="ada", action="workspace.culled")) == [entry]
    assert await hub.idle.check() == []  # stopped once


async def test_recent_use_through_the_proxy_keeps_it(make_hub: Start) -> None:
    hub = await make_hub()
    await running(hub, "used")
    later(hub, 5)
    scripted(hub).set(activity={workspace_key("ada", "used"): time.time() + 4.5 * HOUR})
    assert await hub.idle.check() == []  # used half an hour ago (by the culler's clock)
    assert await state(hub, "used") == State.RUNNING


async def test_an_open_tunnel_keeps_it_however_long(make_hub: Start) -> None:
    hub = await make_hub()
    await running(hub, "ssh")
    later(hub, 24)
    scripted(hub).set(tunnels={workspace_key("ada", "ssh"): 1})
    assert await hub.idle.check() == []
    assert await state(hub, "ssh") == State.RUNNING
    (look,) = (await hub.idle.outlook(await hub.store.list())).values()
    assert look.tunnels == 1 and look.stop_at is None  # the page says: kept by a tunnel


async def test_unknown_is_never_idle_since_forever(make_hub: Start) -> None:
    """A key the proxy has not seen counts as used when it began recording (a proxy that
    restarted an hour ago knows nothing older); a proxy that does not answer stops nothing."""
    hub = await make_hub()
    await running(hub, "quiet")
    later(hub, 5)
    scripted(hub).set(since=time.time() + 4.5 * HOUR)  # the proxy restarted 30 min ago
    assert await hub.idle.check() == []
    scripted(hub).set(available=False)
    assert await hub.idle.outlook(await hub.store.list()) == {}
    assert await hub.idle.check() == []
    assert await state(hub, "quiet") == State.RUNNING
    scripted(hub).set(since=time.time() + 3 * HOUR)  # restarted 2 h ago: idle since then
    assert await hub.idle.check() == ["ada/quiet"]


async def test_busy_cpu_keeps_it_and_quiet_cpu_is_in_the_reason(make_hub: Start) -> None:
    busy = await make_hub(CpuRuntime(cpu=80.0))
    await running(busy, "training", template="idle-cpu")
    later(busy, 10)
    assert await busy.idle.check() == []
    assert await state(busy, "training") == State.RUNNING
    assert "stats" in busy.runtime.calls  # type: ignore[attr-defined]


async def test_quiet_cpu_is_idle(make_hub: Start) -> None:
    hub = await make_hub(CpuRuntime(cpu=0.3))
    await running(hub, "done", template="idle-cpu")
    later(hub, 8)
    assert await hub.idle.check() == ["ada/done"]
    (entry,) = await hub.audit.query(AuditQuery(action=CULLED))
    assert entry.detail["reason"] == ("idle 8h 0m: no request or WebSocket message through "
                                      "the proxy, no SSH session, CPU 0.3% < 5%")
    assert entry.detail["policy"] == "after 1h without use, unless its CPU use is above 5%"


async def test_the_profile_wins_over_the_template(make_hub: Start) -> None:
    hub = await make_hub(profiles={"long": {"idle_stop_after": "never"},
                                   "short": {"idle_stop_after": "30m"}})
    await running(hub, "kept", template="idle-1h", profile="long")
    await running(hub, "brief", template="jupyterlab", profile="short")
    later(hub, 0.75)
    assert await hub.idle.check() == ["ada/brief"]
    later(hub, 48)
    assert await hub.idle.check() == []
    assert await state(hub, "kept") == State.RUNNING


async def test_a_workspace_stopped_or_restarted_meanwhile_is_left_alone(
        make_hub: Start) -> None:
    hub = await make_hub()
    await running(hub, "moving")
    later(hub, 2)
    before = await hub.store.list()
    await hub.manager.stop("ada", "moving")
    await hub.manager.start("ada", "moving")  # the owner came back between look and stop
    await hub.manager.wait_settled(before[0].id)
    look = (await hub.idle.outlook(before))[before[0].id]
    assert not await hub.idle._cull(before[0], look, "idle 2h 0m")
    assert await state(hub, "moving") == State.RUNNING


async def test_the_hub_checks_on_its_interval(make_hub: Start) -> None:
    hub = await make_hub(idle_check_interval=0.05)
    await running(hub, "forgotten")
    later(hub, 2)
    await hub.start_background()
    for _ in range(100):  # 5 s at most
        if await state(hub, "forgotten") == State.STOPPED:
            break
        await asyncio.sleep(0.05)
    assert await state(hub, "forgotten") == State.STOPPED
