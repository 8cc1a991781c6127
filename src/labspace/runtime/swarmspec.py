"""Pure translations for the Swarm runtime: a ContainerSpec into a service spec, and a service
with its tasks back into a ContainerInfo. No engine calls here, so all of it is unit-tested.

A workspace is one Swarm service with at most one replica: created with none ("created"),
scaled to one to start, to none to stop. What the single-host runtime sets on a container is
set on the service's task, with these differences (see docs/architecture.md, "Swarm"):

* reservations equal the limits, so the engine never promises a node more CPUs or memory than
  it has, and a start that fits nowhere stays pending ("waiting for capacity") until room
  appears;
* services cannot set ``no-new-privileges`` (API 1.41) nor MemorySwap: the entrypoint runs the
  app under ``setpriv --no-new-privs`` when the workspace has no sudo (LABSPACE_NO_NEW_PRIVS);
* the endpoint mode is ``dnsrr``: no virtual IP, each task's own overlay address is its
  endpoint (service VIPs need IPVS, which not every kernel has).
"""

from __future__ import annotations

import re
from typing import Any

from labspace.errors import InvalidInput
from labspace.runtime.base import LABEL_PREFIX, ContainerInfo, ContainerSpec

# The ports a workspace's app listens on: services have no ExposedPorts, so they ride along.
PORTS_LABEL = LABEL_PREFIX + "ports"
NO_NEW_PRIVS_ENV = "LABSPACE_NO_NEW_PRIVS"
# A constraint on node labels, e.g. {"gpu": "true"} -> node.labels.gpu==true.
NODE_LABEL_CONSTRAINT = "node.labels.{key}=={value}"

_LABEL_CONSTRAINT = re.compile(r"node\.labels\.([^=!\s]+)\s*==\s*(\S+)")
_MISSING_MOUNT = re.compile(r"bind source path does not exist: (\S+)")
# Task states (docker/api/types/swarm/task.go) as a container's status.
_WAITING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready",
            "starting"}
# A task made by an update is desired "ready" until the one it replaces is shut down, then
# "running": both are a start under way, not an ended task.
_WANTED = {"running", "ready"}
_ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}
# Node states (docker/api/types/swarm/node.go) in which the manager has lost the node: it
# marks the node's tasks for shutdown, but nobody is left to report that they ended.
LOST_NODE_STATES = {"down", "disconnected"}


def service_spec(spec: ContainerSpec, *, caps: list[str], log_options: dict[str, str],
                 stop_grace_s: float = 10.0) -> dict[str, Any]:
    """The body of POST /services/create for ``spec``: zero replicas until started."""
    env = dict(spec.env)
    if not spec.sudo:
        env[NO_NEW_PRIVS_ENV] = "1"
    container: dict[str, Any] = {
        "Image": spec.image,
        "Env": [f"{key}={value}" for key, value in env.items()],
        "Labels": dict(spec.labels),
        "Mounts": [{"Type": "bind", "Source": m.source, "Target": m.target,
                    "ReadOnly": m.read_only} for m in spec.mounts],
        "CapabilityDrop": ["ALL"],
        "CapabilityAdd": list(caps),
        "StopGracePeriod": int(stop_grace_s * 1e9),
        "Init": False,
    }
    if spec.command is not None:
        container["Args"] = list(spec.command)  # a service's "Command" is the entrypoint
    if spec.hostname:
        container["Hostname"] = spec.hostname
    limits: dict[str, int] = {}
    if spec.limits.cpus is not None:
        limits["NanoCPUs"] = int(spec.limits.cpus * 1e9)
    if spec.limits.memory_bytes is not None:
        limits["MemoryBytes"] = spec.limits.memory_bytes
    reservations: dict[str, Any] = dict(limits)  # what must be free on one node
    if spec.devices:  # the service API has no device list (moby/swarmkit#1244)
        raise InvalidInput("Swarm services cannot be handed device nodes: ask for GPUs "
                           "through the nodes' generic resources (docs/admin.md, GPUs)")
    if spec.generic_resources:  # GPUs advertised by the nodes: the scheduler picks them
        reservations["GenericResources"] = [
            {"DiscreteResourceSpec": {"Kind": kind, "Value": count}}
            for kind, count in sorted(spec.generic_resources.items())]
    if spec.limits.pids is not None:
        limits["Pids"] = spec.limits.pids
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": {"Limits": limits, "Reservations": reservations},
        "RestartPolicy": {"Condition": "none"},  # a workspace that exits is reported, not looped
        "Placement": {"Constraints": [NODE_LABEL_CONSTRAINT.format(key=k, value=v)
                                      for k, v in sorted(spec.node_labels.items())]},
        "LogDriver": {"Name": "json-file", "Options": dict(log_options)},
    }
    if spec.network:
        task["Networks"] = [{"Target": spec.network}]
    labels = {**spec.labels, PORTS_LABEL: ",".join(str(p) for p in spec.ports)}
    return {
        "Name": spec.name,
        "Labels": labels,
        "TaskTemplate": task,
        "Mode": {"Replicated": {"Replicas": 0}},
        "EndpointSpec": {"Mode": "dnsrr"},
    }


def labels_wanted(service: dict[str, Any]) -> dict[str, str]:
    """The node labels a service's constraints ask for (the inverse of service_spec's)."""
    placement = ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("Placement") or {}
    found = (_LABEL_CONSTRAINT.fullmatch(c) for c in placement.get("Constraints") or [])
    return {m.group(1): m.group(2) for m in found if m}


def current_task(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The task that stands for the workspace now: one meant to run if any, else the latest."""
    if not tasks:
        return None

    def order(task: dict[str, Any]) -> tuple[bool, int]:
        wanted = task.get("DesiredState") in _WANTED
        return wanted, int((task.get("Version") or {}).get("Index", 0))

    return max(tasks, key=order)


def task_address(task: dict[str, Any]) -> str | None:
    """The task's address on its first non-ingress network ("10.0.1.5/24" -> "10.0.1.5")."""
    for attachment in task.get("NetworksAttachments") or []:
        network = attachment.get("Network") or {}
        if (network.get("Spec") or {}).get("Ingress"):
            continue
        for address in attachment.get("Addresses") or []:
            return str(address).split("/", 1)[0]
    return None


def meant_to_run(task: dict[str, Any] | None) -> bool:
    return task is not None and task.get("DesiredState") in _WANTED


def unconfirmed_end(task: dict[str, Any]) -> bool:
    """Whether the manager wants ``task`` gone but its node has not said it ended: a stop
    under way, or a node that died (only the node's state tells which)."""
    phase = (task.get("Status") or {}).get("State", "new")
    return task.get("DesiredState") not in _WANTED and phase not in _ENDED


def info_from_service(service: dict[str, Any], tasks: list[dict[str, Any]],
                      node_names: dict[str, str],
                      lost_nodes: frozenset[str] = frozenset()) -> ContainerInfo:
    """Report a service as the container it stands for (see the module docstring).
    ``lost_nodes``: ids of nodes the manager has lost contact with (LOST_NODE_STATES)."""
    spec = service.get("Spec") or {}
    labels = dict(spec.get("Labels") or {})
    ports = [int(p) for p in labels.pop(PORTS_LABEL, "").split(",") if p.isdigit()]
    task = current_task(tasks)
    status, exit_code, error, address, node, image = "created", None, None, None, "", ""
    state = {"engine": "swarm", "service": service.get("ID", "")}
    if task is not None:
        task_status = task.get("Status") or {}
        phase = task_status.get("State", "new")
        state["task"] = task.get("ID", "")
        node = node_names.get(task.get("NodeID", ""), task.get("NodeID", ""))
        image = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "")
        if unconfirmed_end(task) and task.get("NodeID") in lost_nodes:
            status, error = "exited", lost_node(node)
        elif phase == "running":
            status, address = "running", task_address(task)
        elif phase == "rejected" or (phase == "failed" and not (
                task_status.get("ContainerStatus") or {}).get("ContainerID")):
            status, error = "exited", refusal(node, task_status.get("Err") or phase)
        elif phase in _ENDED or task.get("DesiredState") not in _WANTED:
            status = "exited"
            exit_code = (task_status.get("ContainerStatus") or {}).get("ExitCode")
            error = task_status.get("Err") or None
        elif phase == "preparing" and not task_status.get("Err"):
            error = preparing(node)
        elif phase in _WAITING:
            error = task_status.get("Err") or task_status.get("Message") or phase
    return ContainerInfo(
        id=service.get("ID", ""),
        name=spec.get("Name", ""),
        status=status,
        labels=labels,
        ip_address=address,
        exit_code=exit_code,
        started_at=(task or {}).get("CreatedAt") if status != "created" else None,
        error=error,
        endpoints={port: f"http://{address}:{port}" for port in ports} if address else {},
        node=node,
        image_id=image.split("@", 1)[1] if "@" in image else image,
        state=state,
    )


def refusal(node: str, error: str) -> str:
    """Why a node could not run a task, in words an admin acts on."""
    missing = _MISSING_MOUNT.search(error)
    if missing:
        return (f"node {node or '?'} has no {missing.group(1)}: mount the homes (the lab's "
                f"NFS) and shared folders at the same path on every node")
    return f"node {node or '?'} could not run it: {error}"


def preparing(node: str, image_bytes: str = "") -> str:
    """A task being prepared: its node pulls the image (if it lacks it), which Swarm reports
    no progress of; ``image_bytes`` ("312.4 MB"), when known, says how much that is."""
    what = f"{image_bytes} of image" if image_bytes else "the image"
    return f"preparing on {node}: the node pulls {what} if it lacks it"


def lost_node(node: str) -> str:
    return (f"node {node or '?'} is down (the swarm lost contact with it); start the "
            "workspace again to run it on another node")


def replicas(service: dict[str, Any]) -> int:
    mode = ((service.get("Spec") or {}).get("Mode") or {}).get("Replicated") or {}
    return int(mode.get("Replicas", 0))
