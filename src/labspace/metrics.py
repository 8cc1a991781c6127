"""The hub's Prometheus metrics: one registry per hub, the figures of its parts on it.

What each part measures lives with it (workspaces/metrics.py, apps/metrics.py); this module
only puts them on one ``CollectorRegistry`` of the hub's own (never prometheus_client's
global one: tests run several hubs in one process) and renders the text format. The route,
its authentication and the proxy's half are in web/metrics.py; docs/admin.md ("Metrics")
lists the metrics and how to scrape them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from labspace.apps.metrics import PoolCollector
from labspace.apps.pool import AppPools
from labspace.gpus.metrics import GpuFigures, Readings
from labspace.hubedge import CONTROL_SOCKET_TLS
from labspace.state.db import Database
from labspace.workspaces.metrics import QuotaFigures, StartMetrics, WorkspaceStates
from labspace.workspaces.quotas import QuotaBook

log = logging.getLogger(__name__)

# The proxy answers from memory in well under a millisecond; one that takes longer is stuck,
# and the scrape must still get the hub's half well within Prometheus' own timeout (10 s).
PROXY_TIMEOUT = 1.0
_PROXY_UP = (b"# HELP labspace_proxy_up Whether the proxy answered the hub's request for its "
             b"metrics (1) or not (0)\n# TYPE labspace_proxy_up gauge\nlabspace_proxy_up %d\n")


class HubMetrics:
    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.starts = StartMetrics(self.registry)
        self._states = WorkspaceStates(db)
        self.registry.register(self._states)
        self._read_first: list[WorkspaceStates | GpuFigures | QuotaFigures] = [self._states]

    def watch_pools(self, pools: AppPools) -> None:
        self.registry.register(PoolCollector(pools))

    def watch_gpus(self, readings: Readings) -> None:
        self._watch(GpuFigures(readings))

    def watch_quotas(self, quotas: QuotaBook) -> None:
        self._watch(QuotaFigures(quotas.usage))

    def _watch(self, collector: GpuFigures | QuotaFigures) -> None:
        self.registry.register(collector)
        self._read_first.append(collector)

    async def exposition(self) -> bytes:
        """The text format. The database and NVML are read first; rendering then runs
        without an await, so the figures it shows are the ones just read."""
        for collector in self._read_first:
            await collector.refresh()
        return generate_latest(self.registry)


async def proxy_exposition(socket_path: Path) -> bytes | None:
    """The proxy's metrics from its control socket (proxy/control.py), or None when it does
    not answer (stopped, restarting, stuck). Logged at debug level only: a scrape comes every
    few seconds, and labspace_proxy_up 0 says it where an alert can see it."""
    transport = httpx.AsyncHTTPTransport(uds=str(socket_path), verify=CONTROL_SOCKET_TLS)
    try:
        async with httpx.AsyncClient(transport=transport, timeout=PROXY_TIMEOUT) as client:
            response = await client.get("http://proxy/metrics")
            response.raise_for_status()
    except httpx.HTTPError as error:  # a missing socket too: ConnectError
        log.debug("the proxy's metrics are missing from this scrape: %r", error)
        return None
    return response.content


def with_proxy(hub: bytes, proxy: bytes | None) -> bytes:
    """One exposition for one scrape: the hub's, the proxy's (their names never overlap:
    the proxy's begin with labspace_proxy_), and whether the proxy answered."""
    if proxy is None:
        return hub + _PROXY_UP % 0
    return hub + proxy + (b"" if proxy.endswith(b"\n") else b"\n") + _PROXY_UP % 1
