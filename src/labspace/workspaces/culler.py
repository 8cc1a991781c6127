"""Stopping personal workspaces that nobody uses (issue 10).

Every ``idle_check_interval`` seconds the hub asks the proxy when each workspace was last
used (labspace.workspaces.activity; what counts: labspace.proxy.activity) and stops, through
the normal stop path (the home is kept), each running workspace idle longer than its policy
(labspace.templates.idle: its template's, or its profile's). A workspace is idle when:

* nothing used it through the proxy since its last use or the start of this run, whichever
  is later; a key the proxy has not seen counts as used when the proxy began recording, so a
  restarted proxy never makes every workspace look idle;
* no tunnel (an SSH session, a port forward) is open into it;
* where the policy has ``idle_cpu_below``: its CPU use (one sample) is below that.

A proxy that does not answer means nothing is known, and nothing is stopped. Each stop is
recorded in the audit log as ``workspace.culled`` with its reason, and the workspace's
message says why it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from labspace.audit import AuditLog
from labspace.errors import LabspaceError
from labspace.policy.model import ProfileSpec, with_profile
from labspace.runtime import Runtime
from labspace.templates.idle import IdlePolicy
from labspace.templates.store import TemplateStore
from labspace.workspaces.activity import ActivitySource, workspace_key
from labspace.workspaces.manager import WorkspaceManager
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord, WorkspaceStore

log = logging.getLogger(__name__)

CULLED = "workspace.culled"  # the audit log's action
STATS_AT_ONCE = 8  # CPU samples asked of the engine at once


@dataclass(frozen=True)
class Outlook:
    """A running workspace with an idle policy, as the culler sees it now."""

    policy: IdlePolicy
    last_use: float  # wall time of its last use (or of its start, or the proxy's)
    tunnels: int  # open tunnels: in use for as long as one is open

    @property
    def stop_at(self) -> float | None:
        """When it stops if nobody uses it; None while a tunnel is open."""
        return None if self.tunnels else self.last_use + self.policy.stop_after


@dataclass(frozen=True)
class IdleView:
    """What the API and the workspace's page show: its policy, and when it stops unused
    (None: not running, a tunnel open, or the proxy's activity unknown)."""

    policy: IdlePolicy
    stop_at: float | None = None
    tunnels: int = 0


def span(seconds: float) -> str:
    """How long, for people: '8h 0m', '12m 5s'."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


class IdleCuller:
    def __init__(self, *, store: WorkspaceStore, manager: WorkspaceManager,
                 templates: TemplateStore, profiles: Mapping[str, ProfileSpec],
                 runtime: Runtime, activity: ActivitySource, audit: AuditLog,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.manager = manager
        self.templates = templates
        self.profiles = profiles
        self.runtime = runtime
        self.activity = activity
        self.audit = audit
        self.clock = clock

    async def policies(self, records: Sequence[WorkspaceRecord]) -> dict[int, IdlePolicy]:
        """Each workspace's idle policy, by id (those that have one): its template's, with
        its profile's settings winning. Read now: a changed policy applies to running
        workspaces at the next check."""
        templates = {spec.name: spec for spec in await self.templates.list()}
        found: dict[int, IdlePolicy] = {}
        for record in records:
            template = templates.get(record.template)
            if template is None:
                continue
            policy = with_profile(template, self.profiles.get(record.profile)).idle_policy
            if policy is not None:
                found[record.id] = policy
        return found

    async def views(self, records: Sequence[WorkspaceRecord]) -> dict[int, IdleView]:
        """The ``records`` that have an idle policy, by id, with when each stops unused."""
        policies = await self.policies(records)
        looks = await self.outlook(records, policies)
        return {key: IdleView(policy, looks[key].stop_at, looks[key].tunnels) if key in looks
                else IdleView(policy) for key, policy in policies.items()}

    async def outlook(self, records: Sequence[WorkspaceRecord],
                      policies: Mapping[int, IdlePolicy] | None = None) -> dict[int, Outlook]:
        """The running ``records`` that have an idle policy, by id, with when each was last
        used; empty when the proxy does not answer (nothing is known)."""
        running = [record for record in records if record.state == State.RUNNING]
        if policies is None:
            policies = await self.policies(running)
        if not any(record.id in policies for record in running):
            return {}
        snapshot = await self.activity.fetch()
        if not snapshot.available:
            return {}
        started = await self.store.started_at()
        found: dict[int, Outlook] = {}
        for record in running:
            if record.id not in policies:
                continue
            key = workspace_key(record.owner, record.name)
            began = started.get(record.id, record.updated_at).timestamp()
            found[record.id] = Outlook(policies[record.id],
                                       max(snapshot.last_use(key), began),
                                       snapshot.tunnels_open(key))
        return found

    async def check(self) -> list[str]:
        """Stop the workspaces idle past their policy; returns them as 'owner/name'."""
        records = await self.store.list()
        looks = await self.outlook(records)
        due = [(record, looks[record.id]) for record in records
               if record.id in looks and self._due(looks[record.id])]
        # A CPU sample takes the engine a second or two: take them side by side.
        samples = asyncio.Semaphore(STATS_AT_ONCE)

        async def one(record: WorkspaceRecord, look: Outlook) -> str | None:
            async with samples:
                reason = await self._reason(record, look)
            if reason is not None and await self._cull(record, look, reason):
                return f"{record.owner}/{record.name}"
            return None

        done = await asyncio.gather(*(one(record, look) for record, look in due))
        return [name for name in done if name is not None]

    def _due(self, look: Outlook) -> bool:
        stop_at = look.stop_at
        return stop_at is not None and self.clock() >= stop_at

    async def _reason(self, record: WorkspaceRecord, look: Outlook) -> str | None:
        """Why it is idle, for the audit log; None when its CPU says it is not."""
        reason = (f"idle {span(self.clock() - look.last_use)}: no request or WebSocket "
                  "message through the proxy, no SSH session")
        threshold = look.policy.cpu_below
        if threshold is None:
            return reason
        if not record.container_id:
            return None
        try:
            cpu = (await self.runtime.stats(record.container_id)).cpu_percent
        except LabspaceError as error:  # unknown is not idle
            log.warning("idle check of %s/%s: no CPU figure (%s)", record.owner, record.name,
                        error)
            return None
        if cpu >= threshold:
            log.debug("%s/%s has had no visitor for %s but uses %.1f%% CPU: kept",
                      record.owner, record.name, span(self.clock() - look.last_use), cpu)
            return None
        return f"{reason}, CPU {cpu:.1f}% < {threshold:g}%"

    async def _cull(self, record: WorkspaceRecord, look: Outlook, reason: str) -> bool:
        current = await self.store.get_by_id(record.id)
        # Anything that happened since it was looked at (a stop, a restart) wins.
        if (current is None or current.state != State.RUNNING
                or current.updated_at != record.updated_at or self.manager.busy(record.id)):
            return False
        target = f"{record.owner}/{record.name}"
        try:
            await self.manager.stop(record.owner, record.name, why=f"stopped: {reason}")
        except LabspaceError as error:
            log.warning("could not stop idle workspace %s: %s", target, error)
            return False
        log.info("stopped idle workspace %s (%s)", target, reason)
        await self.audit.record(CULLED, actor="", target=target, reason=reason,
                                idle_seconds=int(self.clock() - look.last_use),
                                policy=look.policy.describe())
        return True

    async def run_forever(self, interval: float) -> None:
        """Check every ``interval`` seconds until cancelled (Hub.start_background)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:  # never let one bad round end the checks for good
                log.exception("idle check failed; trying again in %.0f s", interval)
