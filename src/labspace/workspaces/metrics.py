"""The hub's workspace figures for Prometheus: starts (how long, why they failed) and how
many workspaces are in each state.

Every hub builds its own ``CollectorRegistry`` (tests run several hubs in one process; the
global default registry would mix them). The states are read from the database at scrape
time, not kept as a gauge in memory: the database is the truth, another hub process or a
restart changes it, and a gauge updated on every transition would drift the first time a
path forgets to update it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from labspace.errors import LabspaceError, QuotaExceeded, RuntimeFailure, StartFailed
from labspace.state.db import Database
from labspace.state.models import Workspace
from labspace.workspaces.quotas import QuotaUse
from labspace.workspaces.states import State

# Why a start failed: a small fixed set, never free text (each value is a time series).
START_FAILURE_REASONS = ("image", "placement", "timeout", "exited", "quota", "runtime",
                         "other")
# Seconds from the start being queued to the app answering (or the start failing): an
# image pull takes minutes, a warm JupyterLab a second or two.
START_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def failure_reason(error: BaseException) -> str:
    """The reason label of a failed start: what StartFailed says, else by the error's kind."""
    if isinstance(error, StartFailed) and error.reason in START_FAILURE_REASONS:
        return error.reason
    if isinstance(error, QuotaExceeded):
        return "quota"
    if isinstance(error, RuntimeFailure):
        return "runtime"
    return "other"


class StartMetrics:
    """Observed by the manager where a start finishes (WorkspaceManager._start)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "labspace_workspace_start_duration_seconds",
            "Seconds from a workspace start being queued to its app answering, or to the "
            "start failing", ["outcome"], buckets=START_BUCKETS, registry=registry)
        self.failures = Counter(
            "labspace_workspace_start_failures", "Workspace starts that failed, by reason",
            ["reason"], registry=registry)
        # Pre-bound children: every series exists (at 0) from the first scrape, so a rate()
        # over the first failure sees it rise, and no label is built on each start.
        self._succeeded = self.duration.labels("success")
        self._failed = self.duration.labels("failure")
        self._reasons = {reason: self.failures.labels(reason) for reason in
                         START_FAILURE_REASONS}

    def succeeded(self, seconds: float) -> None:
        self._succeeded.observe(seconds)

    def failed(self, seconds: float, error: LabspaceError) -> None:
        self._failed.observe(seconds)
        self._reasons[failure_reason(error)].inc()

    def refused(self) -> None:
        """A start refused by a quota before it was queued: a failure, with no duration."""
        self._reasons["quota"].inc()


class WorkspaceStates(Collector):
    """``labspace_workspaces{state}``, from the database. prometheus_client collects
    synchronously, so the scrape handler awaits ``refresh`` first and renders right after,
    with no await in between (two scrapes at once cannot mix their counts)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.counts: Mapping[str, int] = {}

    async def refresh(self) -> None:
        async with self.db.session() as session:
            rows = (await session.execute(
                select(Workspace.state, func.count()).group_by(Workspace.state))).all()
        self.counts = {str(state): int(count) for state, count in rows}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("labspace_workspaces", "Workspaces by state",
                                   labels=["state"])
        for state in State:  # every state, 0 included: a dashboard's line does not vanish
            family.add_metric([state.value], self.counts.get(state.value, 0))
        yield family


QUOTA_RESOURCES = ("cpus", "memory_bytes", "gpus", "running")


class QuotaFigures(Collector):
    """``labspace_quota_limit`` and ``labspace_quota_use`` by scope, name and resource (cpus,
    memory_bytes, gpus, running), read at scrape time (QuotaBook.usage); a limit that is not
    set has no series."""

    def __init__(self, usage: Callable[[], Awaitable[list[QuotaUse]]]) -> None:
        self.usage = usage
        self.current: Sequence[QuotaUse] = ()

    async def refresh(self) -> None:
        self.current = await self.usage()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["scope", "name", "resource"]
        limit = GaugeMetricFamily("labspace_quota_limit", "The most a user, or a group's "
                                  "members together, may hold at once", labels=labels)
        use = GaugeMetricFamily("labspace_quota_use", "What is held against each quota now",
                                labels=labels)
        for entry in self.current:
            quota = entry.quota
            for resource in QUOTA_RESOURCES:
                most = getattr(quota.limits, resource)
                if most is not None:
                    limit.add_metric([quota.scope, quota.name, resource], most)
                    use.add_metric([quota.scope, quota.name, resource],
                                   getattr(entry.in_use, resource))
        yield from (limit, use)
