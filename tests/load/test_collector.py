"""The load page's sampling against real containers of the test image: a container that
burns CPU shows it, an idle one does not; the cgroup files and the engine's stats agree;
the loop samples only while someone watches, and a watcher holds the newest frame only."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from labspace.load import GpuReading, LoadCollector, LoadFeed
from labspace.runtime.base import LABEL_INSTANCE, LABEL_OWNER, LABEL_WORKSPACE
from labspace.runtime.docker import DockerRuntime
from labspace.runtime.usage import CgroupUsage, read_cgroup, stats_once

pytestmark = pytest.mark.docker

BURN = ["python3", "-c", "while True: pass"]
IDLE = ["sleep", "600"]


def run_container(image: str, instance: str, owner: str, name: str,
                  command: list[str]) -> str:
    return subprocess.run(
        ["docker", "run", "-d", "--rm", "--entrypoint", command[0],
         "--label", f"{LABEL_INSTANCE}={instance}", "--label", f"{LABEL_OWNER}={owner}",
         "--label", f"{LABEL_WORKSPACE}={name}", "--cpus", "1", image, *command[1:]],
        capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def containers(jupyter_image: str) -> Iterator[tuple[str, dict[str, str]]]:
    """An instance with two workspaces' containers: ada's burns a CPU, bob's sleeps."""
    instance = "load" + uuid.uuid4().hex[:8]
    made: dict[str, str] = {}
    try:
        made["ada/burn"] = run_container(jupyter_image, instance, "ada", "burn", BURN)
        made["bob/idle"] = run_container(jupyter_image, instance, "bob", "idle", IDLE)
        yield instance, made
    finally:
        if made:
            subprocess.run(["docker", "rm", "-f", *made.values()], capture_output=True,
                           check=False)


@pytest.fixture
async def runtime() -> AsyncIterator[DockerRuntime]:
    engine = DockerRuntime()
    try:
        yield engine
    finally:
        await engine.close()


async def test_a_container_burning_cpu_shows_it(
        containers: tuple[str, dict[str, str]], runtime: DockerRuntime, tmp_path: Path) -> None:
    instance, _ = containers
    collector = LoadCollector(runtime, instance=instance, homes=tmp_path, local_engine=True,
                              interval=1.0)
    await collector.sample()
    await asyncio.sleep(1.5)
    snapshot = await collector.sample()
    (server,) = snapshot.servers
    by_name = {f"{w.owner}/{w.name}": w for w in server.workspaces}
    assert set(by_name) == {"ada/burn", "bob/idle"}
    burn, idle = by_name["ada/burn"], by_name["bob/idle"]
    # One CPU's worth at most (--cpus 1); two cores shared with other work: well above idle.
    assert burn.cpu_percent is not None and 30 <= burn.cpu_percent <= 110, burn
    assert idle.cpu_percent is not None and idle.cpu_percent < 5, idle
    assert burn.memory_bytes and idle.memory_bytes
    assert server.measured and server.cpu_percent is not None and server.cpus >= 1
    assert server.memory_used_bytes and server.memory_total_bytes > server.memory_used_bytes
    assert server.disk_path == str(tmp_path) and server.disk_total_bytes
    view = snapshot.view("bob")  # a member sees the totals and their own only
    assert [w["name"] for w in view["servers"][0]["workspaces"]] == ["idle"]
    assert view["servers"][0]["workspace_count"] == 2


async def test_the_cgroup_files_and_the_engines_stats_agree(
        containers: tuple[str, dict[str, str]], runtime: DockerRuntime,
        tmp_path: Path) -> None:
    _, made = containers
    burn = made["ada/burn"]
    assert read_cgroup(Path("/sys/fs/cgroup"), burn) is not None  # this host's layout
    from_files = await CgroupUsage().usage([burn])
    # No cgroup files under an empty root: every figure comes from the engine's one-shot.
    from_engine = await CgroupUsage(lambda cid: stats_once(runtime.docker, cid),
                                    root=tmp_path).usage([burn, "gone"])
    assert set(from_engine) == {burn}  # a container that is gone is left out, no error
    files, engine = from_files[burn], from_engine[burn]
    assert 0 <= engine.cpu_ns - files.cpu_ns < 2e9  # read a moment later, one CPU at most
    assert abs(engine.memory_bytes - files.memory_bytes) < 16 * 1024 * 1024


def test_the_cgroup_v2_layouts_are_read(tmp_path: Path) -> None:
    """cgroup v2 as the systemd driver and as the cgroupfs driver lay it out (files
    written here in the kernel's formats; this machine runs cgroup v1)."""
    for directory in ("system.slice/docker-aaa.scope", "docker/bbb"):
        where = tmp_path / directory
        where.mkdir(parents=True)
        (where / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
        (where / "memory.current").write_text("10485760\n")
        (where / "memory.stat").write_text("anon 8388608\ninactive_file 2097152\n")
        (where / "memory.max").write_text("max\n")
    (tmp_path / "docker/bbb/memory.max").write_text("1073741824\n")
    aaa, bbb = read_cgroup(tmp_path, "aaa"), read_cgroup(tmp_path, "bbb")
    assert aaa is not None and (aaa.cpu_ns, aaa.memory_bytes, aaa.memory_limit_bytes) == (
        1_500_000_000, 8 * 1024 * 1024, None)
    assert bbb is not None and bbb.memory_limit_bytes == 1024**3
    assert read_cgroup(tmp_path, "ccc") is None


async def test_the_feed_samples_only_while_watched(
        containers: tuple[str, dict[str, str]], runtime: DockerRuntime,
        tmp_path: Path) -> None:
    instance, _ = containers
    feed = LoadFeed(LoadCollector(runtime, instance=instance, homes=tmp_path,
                                  local_engine=True, interval=0.5), 0.5)
    try:
        await asyncio.sleep(1.0)
        assert feed.ticks == 0  # nobody watches: nothing is sampled
        watcher = feed.watch("ada")
        first = await watcher.next(5.0)
        assert first is not None
        await asyncio.sleep(2.0)  # several ticks while this watcher reads nothing
        newest = await watcher.next(1.0)
        assert newest is not None and newest.number >= first.number + 2  # skipped to it
        later = await watcher.next(2.0)
        assert later is not None and later.number > newest.number  # nothing older was kept
        burn = [w for s in newest.snapshot.servers for w in s.workspaces if w.name == "burn"]
        assert burn and burn[0].cpu_percent is not None and burn[0].cpu_percent > 20
        feed.unwatch(watcher)
        await asyncio.sleep(1.0)
        stopped_at = feed.ticks
        await asyncio.sleep(1.5)
        assert feed.ticks == stopped_at  # idle again
    finally:
        await feed.close()


async def test_gpu_readings_plug_in_as_a_function(
        containers: tuple[str, dict[str, str]], runtime: DockerRuntime,
        tmp_path: Path) -> None:
    """labspace.gpus passes a function; what it returns shows under its server, with only
    a member's own holdings named."""
    instance, _ = containers
    host = (await runtime.nodes())[0].hostname

    async def readings() -> Mapping[str, Sequence[GpuReading]]:
        return {host: [GpuReading(0, "a recorded GPU", 40.0, 2 << 30, 16 << 30,
                                  holders=("ada/burn", "bob/idle"))]}

    collector = LoadCollector(runtime, instance=instance, homes=tmp_path, local_engine=True,
                              interval=1.0, gpus=readings)
    snapshot = await collector.sample()
    (gpu,) = snapshot.view(None)["servers"][0]["gpus"]
    assert gpu["utilization_percent"] == 40.0 and gpu["holders"] == ["ada/burn", "bob/idle"]
    (gpu,) = snapshot.view("ada")["servers"][0]["gpus"]
    assert gpu["holders"] == ["ada/burn"] and gpu["held"] is True
