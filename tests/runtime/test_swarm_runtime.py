"""The Swarm runtime on a real multi-node swarm (tests/conftest.py's ``swarm_cluster``):
services placed by free resources and node labels, a start that waits for capacity and says
why, endpoints that are the task's own overlay address, stop, remove and the nodes' report.

Only addresses the engine reported for this module's own services are probed, from a helper
container on the overlay this module created (a host process cannot reach overlay addresses).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from labspace.runtime.base import ContainerInfo, ContainerSpec, Limits
from labspace.runtime.swarm import SwarmRuntime
from labspace.testing.swarm import LABEL, PREFIX, TASK_IMAGE, SwarmCluster, docker

pytestmark = [pytest.mark.swarm, pytest.mark.docker]

RUN = uuid.uuid4().hex[:6]
MINE = {LABEL: "runtime", "org.labspace.test-run": RUN}
HTTPD = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && "
         "exec busybox httpd -f -p 8888 -h /www"]


@pytest.fixture(scope="module")
async def swarm(swarm_cluster: SwarmCluster) -> AsyncIterator[SwarmRuntime]:
    runtime = SwarmRuntime()
    await runtime.ensure_network(f"{PREFIX}-ws-{RUN}")
    try:
        yield runtime
    finally:
        for info in await runtime.list(MINE):
            await runtime.remove(info.id)
        await runtime.close()
        docker("network", "rm", f"{PREFIX}-ws-{RUN}", check=False)


def spec(name: str, image: str, *, cpus: float | None = None,
         node_labels: dict[str, str] | None = None) -> ContainerSpec:
    return ContainerSpec(name=f"{PREFIX}-{RUN}-{name}", image=image, command=HTTPD,
                         labels=dict(MINE), network=f"{PREFIX}-ws-{RUN}", ports=[8888],
                         limits=Limits(cpus=cpus, memory_bytes=64 * 1024**2, pids=64),
                         node_labels=node_labels or {})


async def running(runtime: SwarmRuntime, service_id: str, timeout: float = 90) -> ContainerInfo:
    info = await runtime.start(service_id)
    for _ in range(int(timeout / 0.3)):  # bounded
        if info.running:
            return info
        assert info.status != "exited", info
        await asyncio.sleep(0.3)
        found = await runtime.inspect(service_id)
        assert found is not None
        info = found
    raise AssertionError(f"not running in {timeout} s: {info}")


def fetch_from_overlay(network: str, url: str) -> str:
    """GET ``url`` from a throwaway container on our overlay (the host cannot reach it)."""
    assert docker("network", "inspect", network, check=False).returncode == 0
    # `timeout`, not wget -T: Debian bookworm's busybox wget segfaults with -T.
    done = docker("run", "--rm", "--network", network, "--label", f"{LABEL}=helper",
                  TASK_IMAGE, "timeout", "20", "busybox", "wget", "-qO-", url,
                  check=False, timeout=60)
    return done.stdout.strip()


async def test_a_workspace_service_runs_on_a_node_and_answers_at_its_endpoint(
        swarm: SwarmRuntime, swarm_task_ref: str) -> None:
    created = await swarm.create(spec("one", swarm_task_ref, cpus=0.5))
    assert created.status == "created" and created.endpoints == {}
    info = await running(swarm, created.id)
    assert info.node and info.state["engine"] == "swarm" and info.state["task"]
    url = info.endpoints[8888]
    assert fetch_from_overlay(f"{PREFIX}-ws-{RUN}", url)  # the app answers at its endpoint
    assert [i.id for i in await swarm.list(MINE)] == [created.id]
    await swarm.stop(created.id)
    for _ in range(100):  # bounded: the task shuts down
        stopped = await swarm.inspect(created.id)
        assert stopped is not None
        if not stopped.running:
            break
        await asyncio.sleep(0.2)
    assert not stopped.running and stopped.endpoints == {}
    await swarm.remove(created.id)
    await swarm.remove(created.id)  # idempotent
    assert await swarm.inspect(created.id) is None


async def test_a_template_bound_to_a_label_lands_on_that_node(
        swarm: SwarmRuntime, swarm_task_ref: str, swarm_cluster: SwarmCluster) -> None:
    labelled = [n.hostname for n in swarm_cluster.workers if n.labels.get("bigmem") == "true"]
    created = await swarm.create(spec("big", swarm_task_ref, node_labels={"bigmem": "true"}))
    info = await running(swarm, created.id)
    assert info.node in labelled
    await swarm.remove(created.id)


async def test_a_start_that_fits_nowhere_waits_with_a_message_then_runs(
        swarm: SwarmRuntime, swarm_task_ref: str) -> None:
    nodes = [n for n in await swarm.nodes() if n.schedulable]
    assert len(nodes) >= 3  # the manager and two workers
    # Fill every node's CPUs, then ask for one more node's worth.
    whole = min(n.free_cpus for n in nodes)
    fillers = [await swarm.create(spec(f"fill{i}", swarm_task_ref, cpus=whole))
               for i in range(len(nodes))]
    for filler in fillers:
        await running(swarm, filler.id)
    waiting = await swarm.create(spec("wait", swarm_task_ref, cpus=whole))
    info = await swarm.start(waiting.id)
    for _ in range(50):  # bounded: the scheduler says it fits nowhere
        if info.error and "capacity" in info.error:
            break
        await asyncio.sleep(0.2)
        info = await swarm.inspect(waiting.id) or info
    assert info.status == "created"
    assert info.error and info.error.startswith(f"waiting for capacity: needs {whole:g} CPUs")
    assert "largest free" in info.error
    await swarm.remove(fillers[0].id)  # room appears
    placed = await running(swarm, waiting.id)
    assert placed.running
    report = {n.hostname: n for n in await swarm.nodes()}
    assert report[placed.node].reserved_cpus >= whole
    for filler in fillers[1:]:
        await swarm.remove(filler.id)
    await swarm.remove(waiting.id)
