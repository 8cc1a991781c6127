"""The Swarm runtime: each workspace a one-replica service, placed by the engine on any node.

Same ``Runtime`` protocol as the single-host DockerRuntime, so the manager does not know which
one runs. The handle of a workspace is its service id; start and stop scale it to one replica
and to none; what the single-host runtime reports of a container (status, exit code, address,
node) comes from the service's current task (``swarmspec.info_from_service``).

Placement is the engine's: reservations equal to the limits and node-label constraints go
into the service, and a task that fits no node stays pending. ``inspect`` then reports it as
"created" with a "waiting for capacity: needs ..., largest free ..." message that the
manager shows while it waits.

aiodocker's DockerError is translated to labspace.errors here, as in runtime/docker.py.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

import aiodocker
from aiodocker.exceptions import DockerError

from labspace.errors import Conflict, NotFound, RuntimeFailure
from labspace.runtime.base import (
    LABEL_PREFIX,
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    ExecResult,
    NodeInfo,
)
from labspace.runtime.docker import (
    BASE_CAPS,
    CONTAINER_LOG_ROTATION,
    SUDO_CAPS,
    check_mount,
)
from labspace.runtime.registry import image_bytes
from labspace.runtime.swarmgateway import Gateway
from labspace.runtime.swarmguard import GUARDED_LABEL, NodeGuard
from labspace.runtime.swarmspec import (
    LOST_NODE_STATES,
    current_task,
    info_from_service,
    labels_wanted,
    meant_to_run,
    preparing,
    replicas,
    service_spec,
    unconfirmed_end,
)
from labspace.runtime.transfer import human_bytes

NETWORK_LABEL = LABEL_PREFIX + "network"
GIB = 1024**3
GUARD_CHECK_S = 10.0
log = logging.getLogger(__name__)


def _fail(exc: DockerError, what: str) -> RuntimeFailure:
    return RuntimeFailure(f"{what}: {exc.message}", detail=repr(exc))


class SwarmRuntime:
    """Implements labspace.runtime.Runtime on a swarm manager's engine API."""

    def __init__(self, url: str | None = None, *, gateway_image: str = "",
                 guard_image: str = "") -> None:
        """``gateway_image``: any image with ``sleep`` present on this host's engine (the
        data path, runtime/swarmgateway.py); ``guard_image``: an image with iptables that every
        node can pull (runtime/swarmguard.py); without it workspaces are not kept off the
        nodes' own ports, which ensure_network refuses unless told to accept it."""
        self._url = url
        self._docker: aiodocker.Docker | None = None
        self._node_names: dict[str, str] = {}
        self._lost_nodes: frozenset[str] = frozenset()
        self._gateway_image = gateway_image
        self._guard_image = guard_image
        self._gateway: Gateway | None = None
        self._image_bytes: dict[str, str] = {}  # pinned reference -> "312.4 MB"
        self._sizing: dict[str, asyncio.Task[None]] = {}  # lookups of those under way
        self._attaching: dict[str, asyncio.Task[None]] = {}  # service id -> gateway joining
        self._guard: NodeGuard | None = None
        self._guard_checked = 0.0

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._url)
        return self._docker

    async def close(self) -> None:
        for service_id in list(self._attaching):
            await self._attached(service_id, cancel=True)
        for sizing in list(self._sizing.values()):
            sizing.cancel()
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    async def _query(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return await self.docker._query_json(path, method=method, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------

    async def ensure_image(self, image: str,
                           progress: Callable[[str], Awaitable[None]]) -> str:
        """The image pinned to its registry digest (as `docker service create` does): every
        node runs the same image even if the tag moves. Each node pulls it when the task is
        placed there; the task is "preparing" meanwhile (swarmspec says so)."""
        if "@" in image:
            return image
        await progress(f"looking up {image} in its registry")
        try:
            found = await self._query(f"distribution/{image}/json")
        except DockerError as exc:
            raise RuntimeFailure(
                f"the swarm's nodes cannot pull {image}: {exc.message}. Push it to a registry "
                "every node reaches (labspace image build NAME --push REGISTRY) and name that "
                "reference in the template", detail=repr(exc)) from exc
        pinned = f"{image}@{found['Descriptor']['digest']}"
        if pinned not in self._image_bytes and pinned not in self._sizing:
            # Off the start's path: only the "preparing" message uses it, once known.
            sizing = asyncio.create_task(self._size_image(pinned))
            self._sizing[pinned] = sizing
            sizing.add_done_callback(lambda _: self._sizing.pop(pinned, None))
        return pinned

    async def _size_image(self, pinned: str) -> None:
        size = await image_bytes(pinned)
        if size:
            self._image_bytes[pinned] = human_bytes(size)

    async def create(self, spec: ContainerSpec) -> ContainerInfo:
        for mount in spec.mounts:
            check_mount(mount)
        if self._guard is not None:  # only nodes whose guard runs (runtime/swarmguard.py)
            spec = replace(spec, node_labels={**spec.node_labels, GUARDED_LABEL: "1"})
        network, made = await self._workspace_network(spec)
        body = service_spec(replace(spec, network=network),
                            caps=BASE_CAPS + (SUDO_CAPS if spec.sudo else []),
                            log_options=CONTAINER_LOG_ROTATION)
        try:
            created = await self._query("services/create", "POST", data=json.dumps(body))
        except DockerError as exc:
            if made:  # never the network of a service that already has this name
                await self._remove_network(network)
            if exc.status == 409:
                raise Conflict(f"a service named {spec.name} exists already",
                               detail=repr(exc)) from exc
            raise _fail(exc, f"cannot create {spec.name}") from exc
        if self._gateway is not None:
            # Joining an overlay takes this host's engine about a second: done while the
            # swarm places the task. Until then the endpoint does not answer (the health
            # check retries); a failure surfaces at the next inspect.
            self._attaching[created["ID"]] = asyncio.create_task(self._gateway.attach(network))
        info = await self.inspect(created["ID"])
        if info is None:
            raise NotFound(f"service {spec.name} vanished right after creation")
        return info

    async def start(self, container_id: str) -> ContainerInfo:
        """Scale to one replica and return at once: the task may still wait for a node with
        room, or pull its image ("created" with a message; the manager waits)."""
        if self._gateway is not None and container_id not in self._attaching:
            # One inspect; redone if the gateway was restarted. (A joining under way does
            # this itself, and holds the gateway's lock in the engine meanwhile.)
            await self._gateway.ensure()
        tasks = await self._tasks({"service": [container_id]})
        before = {t["ID"] for t in tasks}
        # One replica already, yet no task meant to run: the swarm shut it down because its
        # node was lost. A fresh task goes to a live node.
        scaled = await self._scale(container_id, 1,
                                   again=not meant_to_run(current_task(tasks)))
        for _ in range(200):  # bounded: 10 s for the orchestrator to make the new task
            info = await self.inspect(container_id)
            if info is None:
                raise NotFound(f"service {container_id} vanished right after start")
            # Until the new task exists, the last one (of the previous run, shut down)
            # stands for the service and would read as "exited".
            if not scaled or info.state.get("task") not in before:
                return info
            await asyncio.sleep(0.05)
        raise RuntimeFailure(f"the swarm made no task for {container_id} within 10 s")

    async def stop(self, container_id: str, timeout: float = 10.0) -> None:
        try:
            await self._scale(container_id, 0)
        except NotFound:
            return

    async def remove(self, container_id: str) -> None:
        await self._attached(container_id, cancel=True)
        service = await self._service(container_id)
        if service is None:
            return
        try:
            await self.docker.services.delete(service["ID"])
        except DockerError as exc:
            if exc.status != 404:
                raise _fail(exc, f"cannot remove {container_id}") from exc
        for network in service["Spec"]["TaskTemplate"].get("Networks") or []:
            await self._remove_network(network["Target"])

    # -- one overlay per workspace ---------------------------------------------------------

    async def _workspace_network(self, spec: ContainerSpec) -> tuple[str, bool]:
        """The overlay for this workspace alone: its id, and whether this call made it (it
        exists already when a service of that name does)."""
        made = True
        try:
            created = await self._query("networks/create", "POST", data=json.dumps({
                "Name": spec.name, "Driver": "overlay", "Attachable": True,
                "CheckDuplicate": True, "Labels": {**spec.labels, NETWORK_LABEL: "1"}}))
        except DockerError as exc:
            if exc.status != 409:
                raise _fail(exc, f"cannot create the network of {spec.name}") from exc
            created, made = {"Id": (await self._query(f"networks/{spec.name}"))["Id"]}, False
        return str(created["Id"]), made

    async def _remove_network(self, network: str, attempts: int = 100) -> None:
        """Leave and remove a workspace's overlay. Its task takes up to the stop grace period
        to go; a network still in use after 20 s is left for the next sweep."""
        if self._gateway is not None:
            await self._gateway.detach(network)
        for _ in range(attempts):  # bounded: 20 s
            try:
                await self._query(f"networks/{network}", "DELETE")
                return
            except DockerError as exc:
                # 404, or 500 "not found" when another remover (the manager's own cleanup of
                # a network whose last task went) got there first
                if exc.status == 404 or "not found" in exc.message:
                    return
                if "in use" not in exc.message and "active endpoints" not in exc.message:
                    raise _fail(exc, f"cannot remove network {network}") from exc
            await asyncio.sleep(0.2)
        log.warning("network %s is still in use; the next sweep removes it", network)

    async def _sweep_networks(self) -> None:
        """Remove workspace overlays whose service is gone, and join the gateway to those it
        missed (a crash between the steps of a create)."""
        try:
            networks = await self.docker.networks.list(
                filters={"label": [f"{NETWORK_LABEL}=1"], "driver": ["overlay"]})
            services = {s["Spec"]["Name"] for s in await self.docker.services.list()}
        except DockerError as exc:
            raise _fail(exc, "cannot list workspace networks") from exc
        attached = await self._gateway.attached() if self._gateway is not None else set()
        for network in networks:
            if network["Name"] not in services:
                await self._remove_network(network["Id"], attempts=1)
            elif self._gateway is not None and network["Id"] not in attached:
                await self._gateway.attach(network["Id"])  # a hub died while joining it

    async def _scale(self, service_id: str, count: int, *, again: bool = False) -> bool:
        """Set the replicas; False when there were ``count`` already, unless ``again`` asks
        for a fresh task anyway."""
        service = await self._service(service_id)
        if service is None:
            raise NotFound(f"no service {service_id}")
        if replicas(service) == count and not (count and again):
            return False
        spec = service["Spec"]
        spec["Mode"] = {"Replicated": {"Replicas": count}}
        if count:
            # A fresh task every start, even when the spec is unchanged.
            template = spec["TaskTemplate"]
            template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1
        await self._update_service(service, spec, f"cannot scale {service_id} to {count}")
        return True

    async def _update_service(self, service: dict[str, Any], spec: dict[str, Any],
                              failure: str) -> None:
        """Replace ``service``'s spec, at the version it was read at (no lost update)."""
        try:
            await self._query(f"services/{service['ID']}/update", "POST",
                              params={"version": str(service["Version"]["Index"])},
                              data=json.dumps(spec))
        except DockerError as exc:
            raise _fail(exc, failure) from exc

    # -- what runs where -------------------------------------------------------------------

    async def _service(self, service_id: str) -> dict[str, Any] | None:
        try:
            return dict(await self.docker.services.inspect(service_id))
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise _fail(exc, f"cannot inspect {service_id}") from exc

    async def _tasks(self, filters: dict[str, list[str]]) -> builtins.list[dict[str, Any]]:
        try:
            return [dict(t) for t in await self._query(
                "tasks", params={"filters": json.dumps(filters)})]
        except DockerError as exc:
            raise _fail(exc, "cannot list tasks") from exc

    async def _node_facts(self, tasks: builtins.list[dict[str, Any]]
                          ) -> tuple[dict[str, str], frozenset[str]]:
        """Node names by id, and the ids of nodes the manager has lost. Listed again only for
        a node not seen before, or a task whose end its node has not confirmed (a stop under
        way, or a dead node: the node's state tells which): not on every inspect."""
        if any(t.get("NodeID") and t["NodeID"] not in self._node_names for t in tasks) or \
                any(unconfirmed_end(t) for t in tasks):
            raw = await self._raw_nodes()
            self._node_names = {n["ID"]: (n.get("Description") or {}).get("Hostname", "")
                                for n in raw}
            self._lost_nodes = frozenset(
                n["ID"] for n in raw
                if (n.get("Status") or {}).get("State") in LOST_NODE_STATES)
        return self._node_names, self._lost_nodes

    async def _raw_nodes(self) -> builtins.list[dict[str, Any]]:
        try:
            return [dict(n) for n in await self.docker.nodes.list()]
        except DockerError as exc:
            raise _fail(exc, "cannot list the swarm's nodes") from exc

    async def _attached(self, service_id: str, *, cancel: bool = False) -> None:
        """Settle the gateway's joining of ``service_id``'s overlay once it has finished
        (raising its failure), or cancel it."""
        joining = self._attaching.get(service_id)
        if joining is None or not (cancel or joining.done()):
            return
        del self._attaching[service_id]
        if cancel:
            joining.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeFailure):
                await joining
        else:
            joining.result()

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        await self._attached(container_id)
        service = await self._service(container_id)
        if service is None:
            return None
        tasks = await self._tasks({"service": [service["ID"]]})
        info = info_from_service(service, tasks, *await self._node_facts(tasks))
        if info.status == "created" and info.error and "insufficient resources" in info.error:
            info = _with_error(info, await self._capacity_message(service))
        elif info.status == "created" and info.error == preparing(info.node):
            image = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image", "")
            if image in self._image_bytes:  # how much the node's pull amounts to
                info = _with_error(info, preparing(info.node, self._image_bytes[image]))
        return info

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        """The services with ``labels``. Reconcile calls this every interval, so it also
        keeps the node guard in step with the nodes (at most every GUARD_CHECK_S): a node
        that joined gets its rules, and workspaces once its guard runs."""
        await self._check_guard()
        wanted = [f"{key}={value}" for key, value in labels.items()]
        try:
            services = await self.docker.services.list(filters={"label": wanted})
        except DockerError as exc:
            raise _fail(exc, "cannot list services") from exc
        if not services:
            return []
        tasks = await self._tasks({"service": [s["ID"] for s in services]})
        names, lost = await self._node_facts(tasks)
        return [info_from_service(dict(s), [t for t in tasks if t.get("ServiceID") == s["ID"]],
                                  names, lost) for s in services]

    async def _check_guard(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._guard is None or now - self._guard_checked < GUARD_CHECK_S:
            return
        self._guard_checked = now
        try:
            await self._guard.ensure()
        except RuntimeFailure as error:
            log.warning("cannot update the node guard: %s", error)

    async def nodes(self) -> builtins.list[NodeInfo]:
        """Every node with its size, labels and what running tasks reserve there."""
        raw = await self._raw_nodes()
        running = await self._tasks({"desired-state": ["running"]})
        reserved: dict[str, tuple[float, int]] = {}
        for task in running:
            wants = (((task.get("Spec") or {}).get("Resources") or {}).get("Reservations") or {})
            cpus, memory = reserved.get(task.get("NodeID", ""), (0.0, 0))
            reserved[task.get("NodeID", "")] = (cpus + wants.get("NanoCPUs", 0) / 1e9,
                                                memory + wants.get("MemoryBytes", 0))
        return [_node(n, reserved) for n in raw]

    async def set_availability(self, node: str, availability: str) -> NodeInfo:
        """active, pause or drain a node (by hostname or id): drained nodes take no new
        workspaces; the running ones stay until stopped (Swarm would move them, losing their
        processes, so services here never restart on their own)."""
        found = [n for n in await self.nodes() if node in (n.hostname, n.id)]
        if not found:
            raise NotFound(f"no node {node!r} in this swarm")
        try:
            raw = dict(await self.docker.nodes.inspect(node_id=found[0].id))
            spec = dict(raw["Spec"], Availability=availability)
            await self._query(f"nodes/{raw['ID']}/update", "POST",
                              params={"version": str(raw["Version"]["Index"])},
                              data=json.dumps(spec))
        except DockerError as exc:
            raise _fail(exc, f"cannot set node {node} to {availability}") from exc
        return replace(found[0], availability=availability)

    async def _capacity_message(self, service: dict[str, Any]) -> str:
        wants = service["Spec"]["TaskTemplate"].get("Resources", {}).get("Reservations", {})
        cpus, memory = wants.get("NanoCPUs", 0) / 1e9, wants.get("MemoryBytes", 0)
        wanted = labels_wanted(service)
        live = [n for n in await self.nodes() if n.schedulable
                and all(n.labels.get(k) == v for k, v in wanted.items())]
        need = ", ".join(part for part in (
            f"{cpus:g} CPUs" if cpus else "", f"{memory / GIB:.1f} GiB" if memory else "") if part)
        if not live:
            where = " with " + ", ".join(f"{k}={v}" for k, v in wanted.items()) if wanted else ""
            return (f"waiting for capacity: needs {need or 'a node'}, no node{where} is "
                    "available")
        best = max(live, key=lambda n: (n.free_cpus, n.free_memory_bytes))
        return (f"waiting for capacity: needs {need}, largest free {best.free_cpus:g} CPUs, "
                f"{best.free_memory_bytes / GIB:.1f} GiB (on {best.hostname})")

    # -- the rest of the protocol ----------------------------------------------------------

    async def logs(self, container_id: str, tail: int = 50) -> str:
        try:
            lines = await cast(Awaitable[Any], self.docker.services.logs(
                container_id, stdout=True, stderr=True, tail=str(tail)))
        except DockerError as exc:
            if exc.status == 404:
                raise NotFound(f"no service {container_id}") from exc
            raise _fail(exc, f"cannot read the logs of {container_id}") from exc
        return "".join(lines) if isinstance(lines, builtins.list) else str(lines)

    async def stats(self, container_id: str) -> ContainerStats:
        # A task's usage lives on its node's engine, which the manager does not reach.
        raise RuntimeFailure("usage of a workspace on a swarm node is not collected yet")

    async def exec(self, container_id: str, command: builtins.list[str],
                   user: str | None = None) -> ExecResult:
        raise RuntimeFailure("running a command in a workspace on a swarm node is not "
                             "supported; open a terminal in the workspace instead")

    async def ensure_network(self, name: str,
                             host_ports: builtins.list[int] | None = None) -> None:
        """The data path (the gateway ``<name>-gateway`` on this host) and, with
        ``host_ports``, the node guard ``<name>-guard`` on every node. Each workspace gets
        its own overlay when created, so no two workspaces share a network."""
        if not self._gateway_image:
            raise RuntimeFailure("the swarm runtime needs a gateway image (setting "
                                 "swarm_gateway_image) to reach workspaces on other nodes")
        self._gateway = Gateway(self.docker, f"{name}-gateway", self._gateway_image)
        await self._gateway.ensure()
        await self._sweep_networks()
        if host_ports is None:
            return
        if not self._guard_image:
            raise RuntimeFailure(
                "workspaces on swarm nodes would reach the nodes' own ports: set "
                "swarm_guard_image to an image with iptables that every node can pull "
                "(labspace image build node-guard), or isolate_host = false to accept that")
        self._guard = NodeGuard(self.docker, f"{name}-guard", self._guard_image,
                                list(host_ports))
        await self._guard.ensure_ready()


def _node(raw: dict[str, Any], reserved: dict[str, tuple[float, int]]) -> NodeInfo:
    description = raw.get("Description") or {}
    resources = description.get("Resources") or {}
    spec = raw.get("Spec") or {}
    status = raw.get("Status") or {}
    cpus, memory = reserved.get(raw.get("ID", ""), (0.0, 0))
    return NodeInfo(
        id=raw.get("ID", ""), hostname=description.get("Hostname", ""),
        role=spec.get("Role", ""), state=status.get("State", "unknown"),
        availability=spec.get("Availability", ""),
        cpus=resources.get("NanoCPUs", 0) / 1e9, memory_bytes=resources.get("MemoryBytes", 0),
        labels=dict(spec.get("Labels") or {}), address=status.get("Addr", ""),
        reserved_cpus=cpus, reserved_memory_bytes=memory)


def _with_error(info: ContainerInfo, error: str) -> ContainerInfo:
    return replace(info, error=error)
