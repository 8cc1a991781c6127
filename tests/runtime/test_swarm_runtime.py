"""The Swarm runtime on a real multi-node swarm (tests/conftest.py's ``swarm_cluster``):
services placed by free resources and node labels, a start that waits for capacity and says
why, endpoints that are the task's own overlay address and answer this host through the
gateway, stop, remove and the nodes' report; and what keeps workspaces apart: an overlay
each, the gateway that forwards only this host's connections, the node guard.

Only addresses the engine reported for this module's own services and nodes are probed.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from labspace.errors import Conflict, RuntimeFailure
from labspace.runtime import swarm as swarm_module
from labspace.runtime.base import ContainerInfo, ContainerSpec, Limits
from labspace.runtime.swarm import SwarmRuntime
from labspace.runtime.swarmguard import GUARDED_LABEL, REFRESH_S
from labspace.testing.swarm import LABEL, PREFIX, TASK_IMAGE, SwarmCluster, docker
from labspace.testing.swarmprobe import remove_edge, tcp_opens_from_task

pytestmark = [pytest.mark.swarm, pytest.mark.docker]

RUN = uuid.uuid4().hex[:6]
MINE = {LABEL: "runtime", "org.labspace.test-run": RUN}
HTTPD = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && "
         "exec busybox httpd -f -p 8888 -h /www"]


GOSSIP_PORT = 7946  # every swarm node listens here (TCP), a node's own service
EDGE = f"{PREFIX}-ws-{RUN}"  # the gateway and node guard this module's runtime makes


@pytest.fixture(scope="module")
async def swarm(swarm_cluster: SwarmCluster, swarm_guard_ref: str
                ) -> AsyncIterator[SwarmRuntime]:
    runtime = SwarmRuntime(gateway_image=TASK_IMAGE, guard_image=swarm_guard_ref)
    try:
        await runtime.ensure_network(EDGE, host_ports=[])
        yield runtime
    finally:
        for info in await runtime.list(MINE):
            await runtime.remove(info.id)
        await runtime.close()
        remove_edge(EDGE)


def spec(name: str, image: str, *, cpus: float | None = None,
         node_labels: dict[str, str] | None = None) -> ContainerSpec:
    return ContainerSpec(name=f"{PREFIX}-{RUN}-{name}", image=image, command=HTTPD,
                         labels=dict(MINE), ports=[8888],
                         limits=Limits(cpus=cpus, memory_bytes=64 * 1024**2, pids=64),
                         node_labels=node_labels or {})


async def running(runtime: SwarmRuntime, service_id: str, timeout: float = 90) -> ContainerInfo:
    info = await runtime.start(service_id)
    for _ in range(int(timeout / 0.3)):  # bounded
        if info.running:
            return info
        assert info.status != "exited", (info.exit_code, info.error, info.node, info.state)
        await asyncio.sleep(0.3)
        found = await runtime.inspect(service_id)
        assert found is not None
        info = found
    raise AssertionError(f"not running in {timeout} s: {info}")


async def fetch(url: str) -> str:
    """GET ``url`` from this host, as the proxy would (through the gateway's route)."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url)
    answer.raise_for_status()
    return answer.text.strip()


async def test_a_workspace_service_runs_on_a_node_and_answers_at_its_endpoint(
        swarm: SwarmRuntime, swarm_task_ref: str) -> None:
    created = await swarm.create(spec("one", swarm_task_ref, cpus=0.5))
    assert created.status == "created" and created.endpoints == {}
    info = await running(swarm, created.id)
    assert info.node and info.state["engine"] == "swarm" and info.state["task"]
    url = info.endpoints[8888]
    assert await fetch(url)  # the app answers this host at its endpoint
    assert [i.id for i in await swarm.list(MINE)] == [created.id]
    await swarm.stop(created.id)
    for _ in range(100):  # bounded: the task shuts down
        stopped = await swarm.inspect(created.id)
        assert stopped is not None
        if not stopped.running:
            break
        await asyncio.sleep(0.2)
    assert not stopped.running and stopped.endpoints == {}
    # A second workspace under the same name is refused and leaves the first one whole.
    with pytest.raises(Conflict):
        await swarm.create(spec("one", swarm_task_ref, cpus=0.5))
    again = await running(swarm, created.id)
    assert await fetch(again.endpoints[8888])
    await swarm.remove(created.id)
    await swarm.remove(created.id)  # idempotent
    assert await swarm.inspect(created.id) is None


async def test_the_gateway_joins_while_the_task_is_placed_and_rejoins_after_a_crash(
        swarm: SwarmRuntime, swarm_task_ref: str) -> None:
    created = await swarm.create(spec("join", swarm_task_ref))
    info = await running(swarm, created.id)
    for _ in range(50):  # bounded: the joining runs beside the placement
        try:
            assert await fetch(info.endpoints[8888])
            break
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("the endpoint never answered through the gateway")
    # A hub that died before the gateway joined the overlay: the next start of the runtime
    # (ensure_network) joins it, and the endpoint answers again.
    network = info.name
    docker("network", "disconnect", network, f"{EDGE}-gateway")
    with pytest.raises(httpx.TransportError):
        await fetch(info.endpoints[8888])
    await swarm.ensure_network(EDGE, host_ports=[])
    assert await fetch(info.endpoints[8888])
    await swarm.remove(created.id)


async def test_a_gateway_that_cannot_join_fails_the_start_with_its_reason(
        swarm: SwarmRuntime, swarm_task_ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(network_id: str) -> None:  # injected: the engine refuses the join
        raise RuntimeFailure(f"cannot attach the swarm gateway to {network_id}: injected")

    assert swarm._gateway is not None
    monkeypatch.setattr(swarm._gateway, "attach", refused)
    created = await swarm.create(spec("nojoin", swarm_task_ref))
    with pytest.raises(RuntimeFailure, match="injected"):
        for _ in range(50):  # bounded
            await swarm.inspect(created.id)
            await asyncio.sleep(0.1)
    monkeypatch.undo()
    await swarm.remove(created.id)
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


async def test_a_node_takes_workspaces_only_once_its_guard_runs(
        swarm: SwarmRuntime, swarm_task_ref: str, swarm_cluster: SwarmCluster,
        monkeypatch: pytest.MonkeyPatch) -> None:
    two = swarm_cluster.workers[1]
    docker("node", "update", "--label-add", f"lsname={two.hostname}", two.node_id)
    assert docker("node", "inspect", "-f", f'{{{{index .Spec.Labels "{GUARDED_LABEL}"}}}}',
                  two.node_id).stdout.strip() == "1"  # marked when the runtime began
    # As a node that has just joined: no mark yet, so nothing lands there ...
    docker("node", "update", "--label-rm", GUARDED_LABEL, two.node_id)
    created = await swarm.create(spec("gate", swarm_task_ref,
                                      node_labels={"lsname": two.hostname}))
    info = await swarm.start(created.id)
    for _ in range(10):  # 2 s: long enough for the scheduler to have placed it
        assert info.status == "created", info
        await asyncio.sleep(0.2)
        info = await swarm.inspect(created.id) or info
    # ... until reconcile's listing sees its guard running and marks it.
    monkeypatch.setattr(swarm_module, "GUARD_CHECK_S", 0.0)
    await swarm.list(MINE)
    placed = await running(swarm, created.id)
    assert placed.node == two.hostname
    await swarm.remove(created.id)


# -- isolation: an overlay each, the gateway, the node guard ----------------------------------


def wait_guarded(cluster: SwarmCluster, service: str) -> None:
    """Wait until the node guard has applied its rules on every node (state file)."""
    guard = f"{EDGE}-guard"
    for _ in range(100):  # bounded: 30 s
        running = [t for t in docker("service", "ps", "-q", "--filter", "desired-state=running",
                                     guard).stdout.split()]
        if len(running) == len(cluster.workers) + 1:
            break
        time.sleep(0.3)
    time.sleep(REFRESH_S + 1)  # one full round of the guard's loop on every node


async def test_workspaces_on_two_nodes_reach_neither_each_other_nor_any_node(
        swarm: SwarmRuntime, swarm_task_ref: str, swarm_cluster: SwarmCluster) -> None:
    one, two = swarm_cluster.workers[:2]
    for node in (one, two):
        docker("node", "update", "--label-add", f"lsname={node.hostname}", node.node_id)
    a = await swarm.create(spec("iso-a", swarm_task_ref, node_labels={"lsname": one.hostname}))
    b = await swarm.create(spec("iso-b", swarm_task_ref, node_labels={"lsname": two.hostname}))
    a_info, b_info = await running(swarm, a.id), await running(swarm, b.id)
    assert (a_info.node, b_info.node) == (one.hostname, two.hostname)
    # This host reaches both (the data path), each on a network of its own.
    assert await fetch(a_info.endpoints[8888]) != await fetch(b_info.endpoints[8888])
    assert a_info.state["service"] != b_info.state["service"]
    b_address = b_info.endpoints[8888].split("//")[1].split(":")[0]
    a_address = a_info.endpoints[8888].split("//")[1].split(":")[0]
    assert b_address.rsplit(".", 1)[0] != a_address.rsplit(".", 1)[0]  # different subnets
    wait_guarded(swarm_cluster, a_info.name)

    # A lab machine that is not a node: reachable, as from a workspace on one host.
    lab = docker("run", "-d", "--label", f"{LABEL}=helper", TASK_IMAGE, "busybox", "httpd",
                 "-f", "-p", "8080", "-h", "/etc").stdout.strip()
    try:
        lab_address = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", lab
                             ).stdout.strip()
        assert tcp_opens_from_task(swarm_cluster, a_info.name, lab_address, 8080)
        # The nodes' own services listen (this host reaches them) ...
        for node in (one, two):
            with socket.create_connection((node.address, GOSSIP_PORT), timeout=3):
                pass
        # ... but not from a workspace: neither its own node, nor another, nor the manager.
        assert not tcp_opens_from_task(swarm_cluster, a_info.name, one.address, GOSSIP_PORT)
        assert not tcp_opens_from_task(swarm_cluster, a_info.name, two.address, GOSSIP_PORT)
        assert not tcp_opens_from_task(swarm_cluster, a_info.name,
                                       swarm_cluster.manager_address, 2377)
        # Nor the other workspace, on its overlay address or through the gateway.
        assert not tcp_opens_from_task(swarm_cluster, a_info.name, b_address, 8888)
        assert not tcp_opens_from_task(swarm_cluster, b_info.name, a_address, 8888)
    finally:
        docker("rm", "-f", lab, check=False)
        for node in (one, two):
            docker("node", "update", "--label-rm", "lsname", node.node_id, check=False)
    await swarm.remove(a.id)
    await swarm.remove(b.id)
    assert docker("network", "inspect", a_info.name, check=False).returncode != 0  # removed
