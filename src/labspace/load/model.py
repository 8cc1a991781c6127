"""The shapes of the load page: one snapshot of every server, and who may see what of it.

A snapshot is taken once per tick for everybody; ``view`` cuts out what one viewer may
see (an ordinary user: the servers' totals and their own workspaces; an admin: all).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GpuReading:
    """One GPU of one server as a GPU source reports it (labspace.gpus fills these in)."""

    index: int
    name: str
    utilization_percent: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    uuid: str = ""
    holders: tuple[str, ...] = ()  # "owner/workspace" of those using it
    shared: bool = False  # time-sliced by its holders


# The seam for GPU figures: the readings of every server's GPUs, by server (a node's
# hostname, or THIS_HOST for the one the hub runs on and measures). Called once per tick;
# None (the default): no GPUs shown. load/gpus.py adapts labspace.gpus to it.
GpuReadings = Callable[[], Awaitable[Mapping[str, Sequence[GpuReading]]]]
THIS_HOST = ""


@dataclass(frozen=True)
class WorkspaceLoad:
    owner: str
    name: str
    cpu_percent: float | None  # of one CPU, like `docker stats`; None: not measured
    memory_bytes: int | None
    memory_limit_bytes: int | None = None


@dataclass(frozen=True)
class ServerLoad:
    name: str
    # True: measured on this host (psutil, cgroups). False: a node the hub cannot measure
    # (another swarm node, a remote engine): only what the Docker API says of it.
    measured: bool
    cpus: float
    memory_total_bytes: int
    cpu_percent: float | None = None  # of all its CPUs
    memory_used_bytes: int | None = None
    disk_path: str = ""  # the homes filesystem, on the hub's host
    disk_total_bytes: int | None = None
    disk_used_bytes: int | None = None
    reserved_cpus: float = 0.0  # what the workspaces' limits reserve (swarm)
    reserved_memory_bytes: int = 0
    note: str = ""
    gpus: list[GpuReading] = field(default_factory=list)
    workspaces: list[WorkspaceLoad] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    taken_at: float  # Unix time
    interval: float  # seconds between snapshots while someone watches
    servers: list[ServerLoad]

    def view(self, owner: str | None) -> dict[str, Any]:
        """What ``owner`` may see (None: an admin, everything). Other people's workspaces
        are left out, not anonymised: their names are not an ordinary user's business."""
        servers = []
        for server in self.servers:
            # vars(), not dataclasses.asdict: asdict deep-copies every field, a third of a
            # tick's CPU at a hundred workspaces; these fields are flat already.
            shown = dict(vars(server))
            shown["gpus"] = [_gpu(gpu, owner) for gpu in server.gpus]
            shown["workspaces"] = [dict(vars(w)) for w in server.workspaces
                                   if owner is None or w.owner == owner]
            shown["workspace_count"] = len(server.workspaces)
            servers.append(shown)
        return {"taken_at": round(self.taken_at, 3), "interval": self.interval,
                "servers": servers}


def _gpu(gpu: GpuReading, owner: str | None) -> dict[str, Any]:
    shown = dict(vars(gpu))
    shown["holders"] = [h for h in gpu.holders if owner is None or h.split("/", 1)[0] == owner]
    shown["held"] = bool(gpu.holders)
    return shown
