"""Reconciliation: make the database and the engine agree, as a set difference.

Desired state lives in the database, observed state in container labels. At hub start and
on an interval:
- running record, running container   -> adopt (refresh its address)
- running record, stopped container   -> stopped; with the engine's error (a lost node) or
  container gone -> failed
- pending/starting record (a previous hub died mid-start) -> resume the start
- stopping record                      -> finish the stop
- stopped/failed record, running container -> stop the container (the record is the truth)
- container of this instance that no record owns -> remove it
- GPUs held by a workspace no longer starting, running or stopping -> released
Workspaces with an operation under way in this process are left alone. Every step is
idempotent, so running it twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from labspace.errors import LabspaceError
from labspace.runtime import ContainerInfo
from labspace.runtime.base import LABEL_APP, LABEL_INSTANCE, LABEL_WORKSPACE_ID
from labspace.workspaces.manager import WorkspaceManager
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    adopted: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)
    removed_orphans: list[str] = field(default_factory=list)


async def reconcile(manager: WorkspaceManager) -> ReconcileReport:
    report = ReconcileReport()
    settings, runtime, store = manager.settings, manager.runtime, manager.store
    observed: dict[int, list[ContainerInfo]] = {}
    orphans: list[ContainerInfo] = []
    for container in await runtime.list({LABEL_INSTANCE: settings.instance}):
        if LABEL_APP in container.labels:
            continue  # an instant app's: its pool keeps it (labspace.apps.pool)
        try:
            observed.setdefault(int(container.labels.get(LABEL_WORKSPACE_ID, "")), []).append(
                container
            )
        except ValueError:
            orphans.append(container)
    records = await store.list()
    known = {record.id for record in records}
    orphans += [c for wid, cs in observed.items() if wid not in known for c in cs]

    for record in records:
        if manager.busy(record.id):
            continue
        try:
            await _reconcile_one(manager, record, observed.get(record.id, []), report)
        except LabspaceError as error:
            log.warning("reconcile %s/%s: %s", record.owner, record.name, error)

    for container in orphans:
        log.info("removing orphaned container %s", container.name)
        await runtime.remove(container.id)
        report.removed_orphans.append(container.name)
    await _release_gpus(manager)
    return report


async def _release_gpus(manager: WorkspaceManager) -> None:
    """GPUs go back from every workspace that is no longer starting, running or stopping (a
    crash marked above, a record gone): held minus active, like the rest."""
    if manager.gpus is None:
        return
    active = {record.id for record in await manager.store.list()
              if record.state in (State.PENDING, State.STARTING, State.RUNNING, State.STOPPING)}
    # Decided with no await after the listing: a start that began since is busy, kept.
    busy = {wid for wid in manager.gpus.allocator.holding() if manager.busy(wid)}
    for wid in manager.gpus.keep_only(active | busy):
        log.info("workspace %d no longer runs: its GPUs are free again", wid)


async def _reconcile_one(
    manager: WorkspaceManager,
    record: WorkspaceRecord,
    containers: list[ContainerInfo],
    report: ReconcileReport,
) -> None:
    store, runtime = manager.store, manager.runtime
    label = f"{record.owner}/{record.name}"
    running = next((c for c in containers if c.running), None)
    if record.state == State.RUNNING:
        if running is None:
            gone = not containers
            # The engine's reason, e.g. "node lsnode2 is down", marks a failure; a
            # container that merely ended was stopped by someone else.
            error = next((c.error for c in containers if c.error), None)
            reason = ("its container was removed outside labspace" if gone
                      else error or "its container stopped outside labspace")
            await store.transition(record.id, State.FAILED if gone or error else State.STOPPED,
                                   reason, target=None,
                                   container_id=None if gone else record.container_id)
            report.marked.append(label)
        elif record.target and _moved(record.target, running):
            target = running.endpoints[urlsplit(record.target).port or 80]
            await store.transition(record.id, State.RUNNING, "address refreshed",
                                   target=target, container_id=running.id)
            report.adopted.append(label)
        else:
            report.adopted.append(label)
    elif record.state in (State.PENDING, State.STARTING):
        manager.resume_start(record)
        report.resumed.append(label)
    elif record.state == State.STOPPING:
        for container in containers:
            if container.running:
                await runtime.stop(container.id, manager.settings.stop_timeout)
        await store.transition(record.id, State.STOPPED, "stopped", target=None)
        report.marked.append(label)
    elif running is not None:  # stopped or failed in the database, yet running
        await runtime.stop(running.id, manager.settings.stop_timeout)
        report.marked.append(label)


def _moved(target: str, running: ContainerInfo) -> bool:
    """Whether the running container now answers the recorded port somewhere else (the
    engine gave it a new address, e.g. after a daemon restart)."""
    endpoint = running.endpoints.get(urlsplit(target).port or 80)
    return endpoint is not None and endpoint != target


async def reconcile_forever(manager: WorkspaceManager, interval: float) -> None:
    """Run reconcile every ``interval`` seconds until cancelled; errors are logged, not fatal."""
    while True:
        await asyncio.sleep(interval)
        try:
            await reconcile(manager)
        except LabspaceError as error:
            log.warning("reconcile failed: %s", error)
        except Exception:
            log.exception("reconcile failed")
