"""The narrow, typed interface every runtime backend implements."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Label keys carried by every container labspace owns; the whole state can be rebuilt from them.
LABEL_PREFIX = "org.labspace."
LABEL_INSTANCE = LABEL_PREFIX + "instance"
LABEL_OWNER = LABEL_PREFIX + "owner"
LABEL_WORKSPACE = LABEL_PREFIX + "workspace"
LABEL_WORKSPACE_ID = LABEL_PREFIX + "workspace-id"
LABEL_TEMPLATE = LABEL_PREFIX + "template"
# An instant app's pool container (labspace.apps), not a workspace's: the workspaces'
# reconcile leaves it to the pools.
LABEL_APP = LABEL_PREFIX + "app"
LABEL_SLOT = LABEL_PREFIX + "slot"


@dataclass(frozen=True)
class Limits:
    """Resource limits; None means unlimited."""

    cpus: float | None = None
    memory_bytes: int | None = None
    pids: int | None = None


@dataclass(frozen=True)
class Mount:
    """A host directory bind-mounted into the container."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one container."""

    name: str
    image: str
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    # sudo=True keeps the capabilities and setuid binaries that sudo/apt need inside;
    # sudo=False also sets no-new-privileges.
    sudo: bool = False
    network: str | None = None
    hostname: str | None = None
    # Ports the main app listens on inside the container (not published on the host).
    ports: list[int] = field(default_factory=list)
    # Node labels a node must carry to run it ({"gpu": "true"}); a single engine has no nodes
    # to choose from and ignores them.
    node_labels: dict[str, str] = field(default_factory=dict)
    # Host device nodes handed in at the same path, read-write-mknod (a GPU's /dev/nvidia0
    # and the driver's control nodes: labspace.gpus). Swarm services cannot take devices.
    devices: list[str] = field(default_factory=list)
    # A cluster's generic resources to reserve ({"GPU": 1}): the scheduler places the
    # task on a node advertising them; a single engine has none and refuses such a spec.
    generic_resources: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerInfo:
    """What the engine reports of one container: where it was placed and where it is
    reachable, so callers never build an address from a backend's internals."""

    id: str
    name: str
    status: str  # created, running, paused, restarting, exited, dead
    labels: dict[str, str] = field(default_factory=dict)
    ip_address: str | None = None
    exit_code: int | None = None
    started_at: str | None = None
    error: str | None = None
    # While running: each port of ContainerSpec.ports -> the base URL that reaches it from
    # labspace's proxy ("http://172.18.0.5:8888" on one Docker host; another backend may
    # answer with a node's address or a service VIP).
    endpoints: dict[int, str] = field(default_factory=dict)
    node: str = ""  # where the backend placed it ("" on a single engine)
    image_id: str = ""  # the exact image it runs ("sha256:..."), whatever its tag says now
    # The backend's own facts about this container, kept with the instance record and never
    # read by the manager (JupyterHub's Spawner.get_state): Docker keeps its network; a swarm
    # backend would keep its service and task ids.
    state: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class NodeInfo:
    """A machine workspaces run on, as `labspace node list` shows it: a swarm node, or the
    single engine's own host."""

    id: str
    hostname: str
    role: str  # manager or worker
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    cpus: float
    memory_bytes: int
    labels: dict[str, str]
    address: str = ""
    reserved_cpus: float = 0.0  # reserved by the tasks running there
    reserved_memory_bytes: int = 0

    @property
    def free_cpus(self) -> float:
        return max(0.0, self.cpus - self.reserved_cpus)

    @property
    def free_memory_bytes(self) -> int:
        return max(0, self.memory_bytes - self.reserved_memory_bytes)

    @property
    def schedulable(self) -> bool:
        return self.state == "ready" and self.availability == "active"


@dataclass(frozen=True)
class ContainerStats:
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int | None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


@runtime_checkable
class Runtime(Protocol):
    """A container engine. Calls for different containers may run concurrently.

    Removal is idempotent: removing a container that is gone is not an error. Engine errors
    are raised as labspace.errors.RuntimeFailure; a missing container as NotFound (except
    where noted).
    """

    async def ensure_image(
        self, image: str, progress: Callable[[str], Awaitable[None]]
    ) -> str:
        """Make ``image`` runnable where the workspace will be placed, reporting progress
        lines ("pulling x: 312.4 MB of 1.20 GB"); return the reference to create it with. A
        single engine pulls it when absent; a cluster resolves the registry's digest, so
        every node runs the same image, and refuses one its nodes cannot pull."""
        ...

    async def create(self, spec: ContainerSpec) -> ContainerInfo: ...

    async def start(self, container_id: str) -> ContainerInfo: ...

    async def stop(self, container_id: str, timeout: float = 10.0) -> None: ...

    async def remove(self, container_id: str) -> None: ...

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        """The container, or None when it does not exist."""
        ...

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        """All containers (running or not) carrying every given label."""
        ...

    async def logs(self, container_id: str, tail: int = 50) -> str: ...

    async def stats(self, container_id: str) -> ContainerStats: ...

    async def exec(
        self, container_id: str, command: builtins.list[str], user: str | None = None
    ) -> ExecResult: ...

    async def ensure_network(
        self, name: str, host_ports: builtins.list[int] | None = None
    ) -> None:
        """Make the network workspaces join: no traffic between its containers, and with
        ``host_ports`` none to the host except those ports. Idempotent."""
        ...

    async def nodes(self) -> builtins.list[NodeInfo]:
        """The machines workspaces may run on (one for a single engine)."""
        ...

    async def set_availability(self, node: str, availability: str) -> NodeInfo:
        """Make a node ``active``, ``pause`` or ``drain`` (no new workspaces there);
        InvalidInput where the backend has a single node."""
        ...

    async def close(self) -> None: ...
