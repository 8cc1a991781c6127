"""The GPUs' figures for Prometheus: each GPU's utilization and memory, and how many
workspaces hold it (several only when shared).

Read at scrape time from ``GpuService.readings`` (NVML afresh, in a thread): no gauge is kept
up to date between scrapes. Like the hub's other collectors (workspaces/metrics.py), the
scrape awaits ``refresh`` and renders right after, with no await in between.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from labspace.gpus.model import GpuReading

log = logging.getLogger(__name__)

Readings = Callable[[], Awaitable[list[GpuReading]]]
_LABELS = ["gpu", "uuid", "name"]


class GpuFigures(Collector):
    def __init__(self, readings: Readings) -> None:
        self.readings = readings
        self.current: Sequence[GpuReading] = ()

    async def refresh(self) -> None:
        try:
            self.current = await self.readings()
        except Exception as error:  # NVML failing must not cost the scrape the hub's rest
            log.warning("GPU figures left out of this scrape: %s", error)
            self.current = ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        utilization = GaugeMetricFamily(
            "labspace_gpu_utilization_percent", "Each GPU's utilization as NVML reports it "
            "(absent where it cannot say: MIG on)", labels=_LABELS)
        used = GaugeMetricFamily("labspace_gpu_memory_used_bytes", "Each GPU's memory in use",
                                 labels=_LABELS)
        total = GaugeMetricFamily("labspace_gpu_memory_total_bytes", "Each GPU's memory",
                                  labels=_LABELS)
        holders = GaugeMetricFamily(
            "labspace_gpu_holders", "Workspaces holding each GPU (more than one: shared)",
            labels=_LABELS)
        for reading in self.current:
            gpu = reading.gpu
            labels = [str(gpu.index), gpu.uuid, gpu.name]
            if gpu.utilization_percent is not None:
                utilization.add_metric(labels, gpu.utilization_percent)
            used.add_metric(labels, gpu.memory_used_bytes)
            total.add_metric(labels, gpu.memory_total_bytes)
            holders.add_metric(labels, len(reading.holders))
        yield from (utilization, used, total, holders)
