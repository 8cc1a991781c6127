"""GpuService: this hub's GPUs in one place, for the workspace manager (take, release), the
hub's start-up (restore) and anyone who shows them (``readings``: the load page, metrics).

On one Docker host labspace decides which GPU each workspace gets (GpuAllocator) and hands
in exactly those device nodes. On Swarm (``cluster=True``) the scheduler decides: a start
reserves N of the nodes' advertised GPU resources and nothing is allocated here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from labspace.errors import StartFailed
from labspace.gpus.allocator import GpuAllocator
from labspace.gpus.container import with_cluster_gpus, with_gpus
from labspace.gpus.driver import DriverFiles, find_driver_files
from labspace.gpus.model import GpuInfo, GpuReading, GpuRequest, Grant, Holder
from labspace.gpus.nvml import GpuSource
from labspace.runtime import ContainerSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """What an open instance recorded: its workspace, its GPUs' UUIDs, whether shared."""

    workspace_id: int
    label: str
    uuids: tuple[str, ...]
    shared: bool


class GpuService:
    def __init__(self, source: GpuSource, *, cdi_dirs: Sequence[Path] = (),
                 share_limit: int = 8, cluster: bool = False) -> None:
        self.source = source
        self.cdi_dirs = tuple(cdi_dirs)
        self.cluster = cluster
        self.inventory: list[GpuInfo] = []
        self.files = DriverFiles()
        self.allocator = GpuAllocator([], share_limit)

    async def open(self, held: Iterable[Held] = ()) -> None:
        """Find this host's GPUs and the driver's files, and hold again what the open
        instances recorded (a restarted hub never hands a GPU out twice)."""
        self.inventory = await asyncio.to_thread(self.source.read)
        self.allocator = GpuAllocator(self.inventory, self.allocator.share_limit)
        if self.inventory:
            self.files = await asyncio.to_thread(find_driver_files, self.cdi_dirs)
            log.info("GPUs: %s; driver files from %s (%d mounts, control nodes %s)",
                     ", ".join(f"{g.index}: {g.name}{' (MIG)' if g.mig else ''}"
                               for g in self.inventory),
                     self.files.origin, len(self.files.mounts),
                     " ".join(self.files.control_nodes) or "none")
            if not self.files.found:
                log.warning("GPUs found, but not the NVIDIA driver's libraries: workspaces "
                            "given a GPU will not run CUDA (see docs/admin.md, GPUs)")
        for one in held:
            self.allocator.restore(Holder(one.workspace_id, one.label),
                                   Grant(one.uuids, one.shared))

    # -- the workspace manager's side -------------------------------------------------

    async def take(self, workspace_id: int, label: str, request: GpuRequest,
                   on_wait: Callable[[], Awaitable[None]] | None = None) -> Grant | None:
        """The GPUs this start gets (None: it asked for none, or a cluster places them),
        waiting while none is free."""
        if not request.wanted:
            return None
        if self.cluster:
            if request.shared:
                raise StartFailed("a shared GPU needs labspace's single-host runtime: on "
                                  "Swarm ask for whole GPUs (gpus = N)")
            return None
        return await self.allocator.take(Holder(workspace_id, label), request, on_wait)

    def release(self, workspace_id: int) -> None:
        if self.allocator.release(workspace_id) is not None:
            log.debug("workspace %d gave its GPUs back", workspace_id)

    def keep_only(self, workspace_ids: Iterable[int]) -> list[int]:
        return self.allocator.keep_only(workspace_ids)

    def container(self, spec: ContainerSpec, request: GpuRequest, grant: Grant | None
                  ) -> ContainerSpec:
        """``spec`` as the request and its grant make it (nothing of a GPU without one)."""
        if self.cluster and request.whole:
            return with_cluster_gpus(spec, request.whole)
        return with_gpus(spec, grant, self.inventory, self.files)

    def held_by(self, workspace_id: int) -> Grant | None:
        return self.allocator.held_by(workspace_id)

    # -- the read-only view ---------------------------------------------------------------

    async def readings(self) -> list[GpuReading]:
        """Every GPU of this host now: NVML's utilization and memory (read afresh, in a
        thread) and which workspaces hold it. Cheap enough to call every few seconds."""
        current = await asyncio.to_thread(self.source.read)
        handed = set(self.allocator.gpus)
        readings = []
        for gpu in current:
            holders, shared = self.allocator.holders_of(gpu.uuid)
            readings.append(GpuReading(gpu=gpu, holders=holders, shared=shared,
                                       available=gpu.uuid in handed))
        return readings
