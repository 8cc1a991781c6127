"""One sample of every server's load: host totals, the homes disk, each workspace's use.

Cheap by design, since it runs every couple of seconds while someone watches: one listing
of the instance's containers, their counters from the cgroup files (runtime/usage.py), the
host's from /proc (psutil); the nodes' sizes are asked for once a minute only.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from labspace.errors import LabspaceError
from labspace.load.model import (
    THIS_HOST,
    GpuReading,
    GpuReadings,
    ServerLoad,
    Snapshot,
    WorkspaceLoad,
)
from labspace.runtime import NodeInfo, Runtime
from labspace.runtime.base import LABEL_APP, LABEL_INSTANCE, LABEL_OWNER, LABEL_WORKSPACE
from labspace.runtime.usage import Usage, UsageSource

log = logging.getLogger(__name__)

NODES_EVERY = 60.0  # seconds: a node's size and labels rarely change; asking costs more
REMOTE_NOTE = ("not measured: another server; its size and what workspaces reserve there, "
               "as the Docker API reports them")


@dataclass(frozen=True)
class HostReading:
    cpu_busy: float  # seconds of CPU time spent busy, all CPUs (counter)
    cpu_total: float  # seconds of CPU time, all CPUs (counter)
    cpus: int
    memory_total: int
    memory_used: int
    disk_total: int | None
    disk_used: int | None


def read_host(homes: Path) -> HostReading:
    """This host's counters (psutil reads /proc; blocking, so run it in a thread). Busy
    time is counted from cpu_times rather than psutil.cpu_percent(), whose state is one
    per process: another caller would reset our interval."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    memory = psutil.virtual_memory()
    disk_total: int | None = None
    disk_used: int | None = None
    try:
        disk = psutil.disk_usage(str(homes))
        disk_total, disk_used = int(disk.total), int(disk.used)
    except OSError:  # not made yet: no disk figure rather than no page
        pass
    return HostReading(cpu_busy=total - idle, cpu_total=total, cpus=psutil.cpu_count() or 1,
                       memory_total=int(memory.total),
                       memory_used=int(memory.total - memory.available),
                       disk_total=disk_total, disk_used=disk_used)


class LoadCollector:
    """Samples ``runtime``'s workspaces of ``instance``. ``local_engine``: the engine runs
    on this host (a unix socket), so this host's totals and cgroup files are the server's.
    ``gpus``: where GPU figures come from (labspace.gpus); None shows none."""

    def __init__(self, runtime: Runtime, *, instance: str, homes: Path, local_engine: bool,
                 interval: float, gpus: GpuReadings | None = None) -> None:
        self.runtime = runtime
        self.usage: UsageSource | None = runtime if isinstance(runtime, UsageSource) else None
        self.instance = instance
        self.homes = homes
        self.local_engine = local_engine
        self.interval = interval
        self.gpus = gpus
        self._nodes: list[NodeInfo] = []
        self._nodes_at = -NODES_EVERY
        self._counters: dict[str, tuple[float, Usage]] = {}  # id -> (when, counters)
        self._host: tuple[float, float] | None = None  # busy, total at the last sample
        self._hostname = socket.gethostname()

    async def nodes(self) -> list[NodeInfo]:
        now = time.monotonic()
        if now - self._nodes_at >= NODES_EVERY or not self._nodes:
            try:
                self._nodes = await self.runtime.nodes()
                self._nodes_at = now
            except LabspaceError as error:  # keep the last known; the workspaces still show
                log.warning("load page: cannot list the servers: %s", error)
        return self._nodes

    def measured(self, node: NodeInfo, nodes: list[NodeInfo]) -> bool:
        return self.local_engine and (len(nodes) == 1 or node.hostname == self._hostname)

    async def sample(self) -> Snapshot:
        containers, nodes = await asyncio.gather(
            self.runtime.list({LABEL_INSTANCE: self.instance}), self.nodes())
        running = [c for c in containers
                   if c.running and LABEL_WORKSPACE in c.labels and LABEL_APP not in c.labels]
        counters = await self.usage.usage([c.id for c in running]) if self.usage else {}
        now = time.monotonic()
        local = any(self.measured(node, nodes) for node in nodes)
        host = await asyncio.to_thread(read_host, self.homes) if local else None
        gpus = await self.gpus() if self.gpus is not None else {}

        placed: dict[str, list[WorkspaceLoad]] = {}
        first = nodes[0].hostname if nodes else self._hostname
        for container in running:
            usage = counters.get(container.id)
            placed.setdefault(container.node or first, []).append(WorkspaceLoad(
                owner=container.labels.get(LABEL_OWNER, ""),
                name=container.labels.get(LABEL_WORKSPACE, ""),
                cpu_percent=self._rate(container.id, now, usage),
                memory_bytes=usage.memory_bytes if usage else None,
                memory_limit_bytes=usage.memory_limit_bytes if usage else None))
        # This sample's counters are the next rates' base; containers gone are forgotten.
        self._counters = {cid: (now, usage) for cid, usage in counters.items()}

        servers = []
        host_cpu = self._host_cpu(host)
        for node in nodes or [NodeInfo(id="", hostname=first, role="engine", state="unknown",
                                       availability="active", cpus=0, memory_bytes=0,
                                       labels={})]:
            workspaces = sorted(placed.pop(node.hostname, []), key=lambda w: (w.owner, w.name))
            here = gpus.get(THIS_HOST, ()) if self.measured(node, nodes) else ()
            servers.append(self._server(node, nodes, host, host_cpu, workspaces,
                                        [*gpus.get(node.hostname, ()), *here]))
        return Snapshot(taken_at=time.time(), interval=self.interval, servers=servers)

    def _rate(self, container_id: str, now: float, usage: Usage | None) -> float | None:
        before = self._counters.get(container_id)
        if usage is None or before is None or now <= before[0]:
            return None
        spent = max(0, usage.cpu_ns - before[1].cpu_ns) / 1e9
        return round(spent / (now - before[0]) * 100.0, 1)

    def _host_cpu(self, host: HostReading | None) -> float | None:
        if host is None:
            return None
        before, self._host = self._host, (host.cpu_busy, host.cpu_total)
        if before is None or host.cpu_total <= before[1]:
            return None
        return round((host.cpu_busy - before[0]) / (host.cpu_total - before[1]) * 100.0, 1)

    def _server(self, node: NodeInfo, nodes: list[NodeInfo], host: HostReading | None,
                host_cpu: float | None, workspaces: list[WorkspaceLoad],
                gpus: list[GpuReading]) -> ServerLoad:
        remote = ServerLoad(name=node.hostname, measured=False, cpus=node.cpus,
                            memory_total_bytes=node.memory_bytes,
                            reserved_cpus=round(node.reserved_cpus, 2),
                            reserved_memory_bytes=node.reserved_memory_bytes, note=REMOTE_NOTE,
                            gpus=gpus, workspaces=workspaces)
        if host is None or not self.measured(node, nodes):
            return remote
        return replace(remote, measured=True, note="", cpus=float(host.cpus),
                       memory_total_bytes=host.memory_total, cpu_percent=host_cpu,
                       memory_used_bytes=host.memory_used, disk_path=str(self.homes),
                       disk_total_bytes=host.disk_total, disk_used_bytes=host.disk_used)
