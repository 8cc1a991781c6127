"""Looking into a test swarm's workspaces from outside: run a command in a service's task
(on whichever node it runs), probe a TCP port from there, and remove the edge (gateway, node
guard) a test's SwarmRuntime made. Only for tasks, addresses and networks the test made."""

from __future__ import annotations

import json
import shlex

from labspace.testing.swarm import SwarmCluster, docker


def task_container(service: str) -> tuple[str, str]:
    """(node id, container id) of the service's running task."""
    ids = docker("service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running",
                 service).stdout.split()
    for data in json.loads(docker("inspect", "--type", "task", *ids).stdout) if ids else []:
        status = data.get("Status") or {}
        if status.get("State") == "running":
            return data["NodeID"], status["ContainerStatus"]["ContainerID"]
    raise RuntimeError(f"{service} has no running task")


def run_in_task(cluster: SwarmCluster, service: str, command: str,
                timeout: float = 60) -> str:
    """Run ``command`` (a shell line) in the service's task; its output (stdout+stderr)."""
    node_id, container = task_container(service)
    inner = ["docker", "exec", container, "sh", "-c", command]
    if node_id == cluster.manager_id:
        done = docker(*inner[1:], check=False, timeout=timeout)
    else:
        worker = next(n for n in cluster.workers if n.node_id == node_id)
        done = docker("exec", worker.container, *inner, check=False, timeout=timeout)
    return (done.stdout + done.stderr).strip()


def tcp_opens_from_task(cluster: SwarmCluster, service: str, host: str, port: int,
                        seconds: int = 3) -> bool:
    """Whether a TCP connection from the service's task to host:port is accepted."""
    probe = (f"timeout {seconds} bash -c {shlex.quote(f'exec 3<>/dev/tcp/{host}/{port}')} "
             "&& echo OPEN || echo SHUT")
    return run_in_task(cluster, service, probe, timeout=seconds + 30).endswith("OPEN")


def remove_edge(name: str) -> None:
    """Remove the gateway ``<name>-gateway`` (its routes go with its bridge) and the node
    guard ``<name>-guard`` that ``SwarmRuntime.ensure_network(name)`` made."""
    docker("service", "rm", f"{name}-guard", check=False)
    docker("rm", "-f", f"{name}-gateway", check=False)
    docker("network", "rm", f"{name}-gateway", check=False)
