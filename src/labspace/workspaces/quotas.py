"""Quotas kept in the database, and their use read from the workspaces (the arithmetic is in
labspace.policy.quotas).

A workspace uses a quota from the moment its start is accepted (pending) until it has
stopped: pending, starting, running and stopping workspaces count; stopped and failed ones
do not (a failed start's container is stopped). Each counts with the limits its open
instance was started with (a later template edit changes nothing for it); one that has no
instance yet (pending, or starting before its container exists) with its template and
profile as they are now, which is what its start will use.

``reserve`` is the check-and-reserve: under one lock it reads the use, checks every quota
that binds the owner, and lets the caller mark the workspace pending before the next check
reads the use. The lock is this hub process's: one hub runs per database.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, delete, select

from labspace.errors import InvalidInput, LabspaceError, NotFound
from labspace.names import validate_name
from labspace.policy.model import ProfileSpec, with_profile
from labspace.policy.quotas import (
    NOTHING,
    SCOPES,
    Capacity,
    Quota,
    QuotaLimits,
    Resources,
    Scope,
    applicable,
    check_all,
    demand,
)
from labspace.state.db import Database
from labspace.state.models import Quota as QuotaRow
from labspace.state.models import User, Workspace, WorkspaceInstance, utcnow
from labspace.templates.model import LimitSpec
from labspace.templates.store import TemplateStore
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord

# The states in which a workspace holds (or is about to hold) what it asked for.
COUNTED = (State.PENDING, State.STARTING, State.RUNNING, State.STOPPING)

MAX_GROUP_NAME = 64  # the column's size
_GROUP_NAME = re.compile(r"[^\x00-\x1f\x7f/]{1,64}")


def host_capacity() -> Capacity:
    """This host's cores and memory: what a workspace without a limit counts as."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # not Linux: no quota on memory fits an unlimited one
        memory = 2**62
    return Capacity(cpus=float(os.cpu_count() or 1), memory_bytes=memory)


def check_quota_name(scope: str, name: str) -> tuple[Scope, str]:
    """A quota's key as given by an admin: users are named as labspace names them; groups
    as the directory or provider does (any printable text, at most 64 characters)."""
    if scope == "user":
        return "user", validate_name(name, kind="user name")
    if scope == "group":
        if not _GROUP_NAME.fullmatch(name) or name != name.strip():
            raise InvalidInput(f"invalid group name {name[:80]!r}: 1-{MAX_GROUP_NAME} "
                               "printable characters, no '/', no spaces around it")
        return "group", name
    raise InvalidInput(f"unknown quota scope {scope[:20]!r}: use {' or '.join(SCOPES)}")


@dataclass(frozen=True)
class QuotaUse:
    """A quota with what is in use against it now, and who set it."""

    quota: Quota
    in_use: Resources
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class _Active:
    """One counted workspace: whose, its owner's groups, what it takes."""

    workspace_id: int
    owner: str
    groups: frozenset[str]
    takes: Resources


def _quota(row: QuotaRow) -> Quota:
    scope: Scope = "group" if row.scope == "group" else "user"
    return Quota(scope, row.name, QuotaLimits(cpus=row.cpus, memory_bytes=row.memory_bytes,
                                              gpus=row.gpus, running=row.running))


def _group_names(groups: list[dict[str, Any]] | None) -> frozenset[str]:
    return frozenset(str(group.get("name")) for group in groups or [] if group.get("name"))


@dataclass
class QuotaBook:
    db: Database
    templates: TemplateStore
    profiles: Mapping[str, ProfileSpec]
    capacity: Capacity = field(default_factory=host_capacity)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- the admins' side -------------------------------------------------------------------

    async def set(self, scope: str, name: str, limits: QuotaLimits, *, by: str) -> QuotaUse:
        """Add or replace the quota of a user or group (it applies to the next start)."""
        key = check_quota_name(scope, name)
        async with self.db.session() as session:
            row = await session.scalar(select(QuotaRow).where(
                QuotaRow.scope == key[0], QuotaRow.name == key[1]))
            if row is None:
                row = QuotaRow(scope=key[0], name=key[1])
                session.add(row)
            row.cpus, row.memory_bytes = limits.cpus, limits.memory_bytes
            row.gpus, row.running = limits.gpus, limits.running
            row.updated_by, row.updated_at = by, utcnow()
            await session.flush()
            quota, at = _quota(row), row.updated_at
        return QuotaUse(quota, self._use_of(quota, await self._active()), by, at)

    async def unset(self, scope: str, name: str) -> None:
        key = check_quota_name(scope, name)
        async with self.db.session() as session:
            gone = (await session.scalars(delete(QuotaRow).where(
                QuotaRow.scope == key[0], QuotaRow.name == key[1]).returning(QuotaRow.id))).all()
        if not gone:
            raise NotFound(f"{key[0]} {key[1]} has no quota")

    async def usage(self) -> list[QuotaUse]:
        """Every quota with its use now, users first, by name (the admins' list; metrics)."""
        rows = await self._rows()
        active = await self._active()
        return [QuotaUse(_quota(row), self._use_of(_quota(row), active), row.updated_by,
                         row.updated_at) for row in rows]

    async def of_user(self, name: str) -> list[QuotaUse]:
        """The quotas that bind ``name`` (theirs, their groups'), with their use now."""
        binding = await self._binding(name)
        if not binding:
            return []
        return [use for use in await self.usage() if use.quota in binding]

    # -- the start's side -------------------------------------------------------------------

    @asynccontextmanager
    async def reserve(self, record: WorkspaceRecord) -> AsyncIterator[None]:
        """Check that starting ``record`` keeps every quota that binds its owner (else
        QuotaExceeded), and hold the check until the caller has marked it pending, so two
        starts never both take the last room. Owners no quota binds pass without waiting."""
        if not await self._binding(record.owner):
            yield
            return
        async with self._lock:
            # Read again under the lock: a quota or the owner's groups may have changed.
            binding = await self._binding(record.owner)
            # Without itself: a start asked twice must not count its own reservation.
            active = [one for one in await self._active() if one.workspace_id != record.id]
            ask = await self._takes(record.template, record.profile, {})
            check_all([(quota, self._use_of(quota, active)) for quota in binding], ask)
            yield

    async def _binding(self, owner: str) -> list[Quota]:
        async with self.db.session() as session:
            groups = _group_names(await session.scalar(
                select(User.groups).where(User.name == owner)))
        return applicable([_quota(row) for row in await self._rows()], owner, groups)

    # -- reading the use ------------------------------------------------------------------

    async def _rows(self) -> list[QuotaRow]:
        async with self.db.session() as session:
            return list(await session.scalars(
                select(QuotaRow).order_by(QuotaRow.scope.desc(), QuotaRow.name)))

    async def _active(self) -> list[_Active]:
        """Every counted workspace, in one query (with its open instance's spec, if any)."""
        is_open = and_(WorkspaceInstance.workspace_id == Workspace.id,
                       WorkspaceInstance.ended_at.is_(None))
        query = (select(Workspace.id, Workspace.template, Workspace.profile, User.name,
                        User.groups, WorkspaceInstance.spec)
                 .join(User, Workspace.owner_id == User.id).outerjoin(WorkspaceInstance, is_open)
                 .where(Workspace.state.in_([str(state) for state in COUNTED])))
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        cache: dict[tuple[str, str], Resources] = {}
        found = []
        for workspace_id, template, profile, owner, groups, spec in rows:
            takes = self._recorded(spec)
            if takes is None:
                takes = await self._takes(template, profile, cache)
            found.append(_Active(workspace_id, owner, _group_names(groups), takes))
        return found

    def _recorded(self, spec: dict[str, Any] | None) -> Resources | None:
        """What an instance was started with, from its recorded limits."""
        if not spec or not isinstance(spec.get("limits"), dict):
            return None
        try:
            return demand(LimitSpec.model_validate(spec["limits"]), self.capacity)
        except ValidationError:  # recorded by another version: read it as its template
            return None

    async def _takes(self, template: str, profile: str,
                     cache: dict[tuple[str, str], Resources]) -> Resources:
        """What a start of this template and profile takes, as they are now."""
        key = (template, profile)
        if key not in cache:
            try:
                spec = await self.templates.get(template)
            except LabspaceError:
                # Its start fails for want of a template: it takes a place, nothing else.
                cache[key] = NOTHING + Resources(running=1)
            else:
                chosen = self.profiles.get(profile) if profile else None
                cache[key] = demand(with_profile(spec, chosen).limits, self.capacity)
        return cache[key]

    @staticmethod
    def _use_of(quota: Quota, active: list[_Active]) -> Resources:
        total = NOTHING
        for one in active:
            if (one.owner == quota.name if quota.scope == "user"
                    else quota.name in one.groups):
                total = total + one.takes
        return total
