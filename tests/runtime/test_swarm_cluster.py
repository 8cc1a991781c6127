"""The multi-node swarm test bed (labspace.testing.swarm) works as a Swarm runtime needs:
nodes Ready and labelled, images from the local registry running on each worker, overlay
traffic between nodes by task address, and one shared directory seen alike from every node.

Only addresses the engine gave for this module's own tasks are probed, on networks this
module created (checked before probing).
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labspace.testing.swarm import (
    LABEL,
    PREFIX,
    TASK_IMAGE,
    SwarmCluster,
    Task,
    docker,
    wait_tasks,
)

pytestmark = [pytest.mark.swarm, pytest.mark.docker]

RUN = uuid.uuid4().hex[:6]
HTTPD = "mkdir -p /www && hostname > /www/index.html && exec busybox httpd -f -p 8080 -h /www"


@pytest.fixture(scope="module")
def overlay(swarm_cluster: SwarmCluster) -> Iterator[str]:
    name = f"{PREFIX}-net-{RUN}"
    docker("network", "create", "--driver", "overlay", "--attachable", "--label", f"{LABEL}=test",
           name)
    yield name
    docker("network", "rm", name, check=False)


@pytest.fixture
def service(swarm_cluster: SwarmCluster, swarm_task_ref: str) -> Iterator[Callable[..., str]]:
    """create(suffix, *options, command=...) -> name: a service of the task image, removed
    after the test."""
    made: list[str] = []

    def create(suffix: str, *options: str, command: str = HTTPD) -> str:
        name = f"{PREFIX}-{suffix}-{RUN}"
        made.append(name)
        docker("service", "create", "--detach", "--quiet", "--name", name,
               "--label", f"{LABEL}=test", *options, swarm_task_ref, "bash", "-c", command)
        return name

    yield create
    for name in made:
        docker("service", "rm", name, check=False)


def node_of(cluster: SwarmCluster, task: Task) -> str:
    return next(n.hostname for n in cluster.workers if n.node_id == task.node_id)


def get(network: str, url: str, image: str = TASK_IMAGE, on: SwarmCluster | None = None,
        node: str = "") -> str:
    """GET url from a helper container on ``network``: on the host engine, or on a worker's."""
    # `timeout`, not wget -T: Debian bookworm's busybox wget segfaults with -T.
    args = ["run", "--rm", "--label", f"{LABEL}=helper", "--network", network, image,
            "timeout", "20", "busybox", "wget", "-qO-", url]
    done = on.on_node(node, *args, timeout=90) if on else docker(*args, timeout=90)
    return done.stdout.strip()


def overlay_subnet(network: str) -> ipaddress.IPv4Network:
    data = json.loads(docker("network", "inspect", network).stdout)[0]
    assert data["Driver"] == "overlay" and data["Labels"].get(LABEL) == "test"
    return ipaddress.IPv4Network(data["IPAM"]["Config"][0]["Subnet"])


def test_nodes_are_ready_and_labelled(swarm_cluster: SwarmCluster) -> None:
    ids = [swarm_cluster.manager_id, *(n.node_id for n in swarm_cluster.workers)]
    nodes = {n["ID"]: n for n in json.loads(docker("node", "inspect", *ids).stdout)}
    assert all(n["Status"]["State"] == "ready" for n in nodes.values()), nodes
    assert nodes[swarm_cluster.manager_id]["Spec"]["Role"] == "manager"
    assert [n.hostname for n in swarm_cluster.workers] == ["lsnode1", "lsnode2"]
    for worker in swarm_cluster.workers:
        found = nodes[worker.node_id]
        assert found["Spec"]["Role"] == "worker"
        assert found["Description"]["Hostname"] == worker.hostname
        assert found["Status"]["Addr"] == worker.address
    assert nodes[swarm_cluster.node("lsnode1").node_id]["Spec"]["Labels"] == {"bigmem": "true"}
    assert nodes[swarm_cluster.node("lsnode2").node_id]["Spec"]["Labels"] == {}


@pytest.mark.parametrize("hostname", ["lsnode1", "lsnode2"])
def test_registry_image_runs_as_dnsrr_service_on_each_worker(
        swarm_cluster: SwarmCluster, service: Callable[..., str], swarm_task_ref: str,
        hostname: str) -> None:
    assert swarm_task_ref.startswith(swarm_cluster.registry + "/")
    name = service(f"web-{hostname}", "--endpoint-mode", "dnsrr",
                   "--constraint", f"node.hostname=={hostname}")
    [task] = wait_tasks(name)
    assert node_of(swarm_cluster, task) == hostname
    spec = json.loads(docker("service", "inspect", name).stdout)[0]["Spec"]
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    # The manager resolved the tag in the registry: tasks run a pinned digest.
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"].startswith(swarm_task_ref + "@sha256:")
    # The task's container runs in that worker's own engine, not on the host.
    running = swarm_cluster.on_node(hostname, "ps", "-q", "--filter",
                                    f"label=com.docker.swarm.task.id={task.id}")
    assert running.stdout.strip()
    assert not docker("ps", "-q", "--filter", f"label=com.docker.swarm.task.id={task.id}"
                      ).stdout.strip()


def test_node_label_constraint_places_the_task(swarm_cluster: SwarmCluster,
                                               service: Callable[..., str]) -> None:
    name = service("bigmem", "--endpoint-mode", "dnsrr",
                   "--constraint", "node.labels.bigmem==true", command="exec sleep 600")
    [task] = wait_tasks(name)
    assert node_of(swarm_cluster, task) == "lsnode1"


def test_overlay_reaches_a_task_on_another_node_by_its_address(
        swarm_cluster: SwarmCluster, service: Callable[..., str], overlay: str,
        swarm_task_ref: str) -> None:
    name = service("web", "--endpoint-mode", "dnsrr", "--network", overlay,
                   "--constraint", "node.hostname==lsnode1", "--hostname", "{{.Node.Hostname}}-web")
    [task] = wait_tasks(name)
    address = task.addresses[overlay]
    assert ipaddress.IPv4Address(address) in overlay_subnet(overlay)
    # From a helper container on the host engine (the manager node) ...
    assert get(overlay, f"http://{address}:8080/") == "lsnode1-web"
    # ... and on the other worker, by address and by the dnsrr service name.
    assert get(overlay, f"http://{address}:8080/", swarm_task_ref, swarm_cluster, "lsnode2") \
        == "lsnode1-web"
    assert get(overlay, f"http://{name}:8080/", swarm_task_ref, swarm_cluster, "lsnode2") \
        == "lsnode1-web"


def test_shared_directory_is_the_same_on_every_node(swarm_cluster: SwarmCluster,
                                                    service: Callable[..., str]) -> None:
    shared: Path = swarm_cluster.shared_dir / f"test-{RUN}"
    shared.mkdir()
    mount = ["--mount", f"type=bind,source={shared},target=/data",
             "--env", "NODE={{.Node.Hostname}}", "--mode", "replicated-job"]
    writer = service("write", *mount, "--constraint", "node.hostname==lsnode1",
                     command='echo "$NODE" > /data/from-node1')
    assert node_of(swarm_cluster, wait_tasks(writer, "complete")[0]) == "lsnode1"
    reader = service("read", *mount, "--constraint", "node.hostname==lsnode2",
                     command='echo "$NODE saw $(cat /data/from-node1)" > /data/seen-by-node2')
    assert node_of(swarm_cluster, wait_tasks(reader, "complete")[0]) == "lsnode2"
    assert (shared / "from-node1").read_text() == "lsnode1\n"
    assert (shared / "seen-by-node2").read_text() == "lsnode2 saw lsnode1\n"
