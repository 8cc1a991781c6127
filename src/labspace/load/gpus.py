"""GPU figures for the load page from labspace.gpus: its readings of this host's GPUs
(NVML's utilization and memory, and the workspaces holding each), in the page's shape.

The hub passes ``this_host(hub.gpus.readings)`` to the feed; the collector shows them under
the server it measures (the hub's own). GPUs of other swarm nodes are not read: NVML
answers only for the machine it runs on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from labspace.gpus.model import GpuReading as NvmlReading
from labspace.load.model import THIS_HOST, GpuReading, GpuReadings


def this_host(readings: Callable[[], Awaitable[Sequence[NvmlReading]]]) -> GpuReadings:
    """A GpuReadings over ``readings`` (labspace.gpus.GpuService.readings)."""

    async def read() -> Mapping[str, Sequence[GpuReading]]:
        return {THIS_HOST: [
            GpuReading(index=r.gpu.index, name=r.gpu.name + (" (MIG)" if r.gpu.mig else ""),
                       utilization_percent=(None if r.gpu.utilization_percent is None
                                            else float(r.gpu.utilization_percent)),
                       memory_used_bytes=r.gpu.memory_used_bytes,
                       memory_total_bytes=r.gpu.memory_total_bytes, uuid=r.gpu.uuid,
                       holders=tuple(holder.label for holder in r.holders), shared=r.shared)
            for r in await readings()]}

    return read
