"""The audit log service over the ``audit_events`` table (state/models.py: AuditEvent)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, or_, select

from labspace.state.db import Database
from labspace.state.models import AuditEvent

log = logging.getLogger(__name__)

# The columns' lengths (models.py): PostgreSQL refuses longer strings, so cut them rather
# than lose the entry.
_LENGTHS = {"actor": 100, "action": 40, "target": 200, "address": 100}
MAX_LIMIT = 1000
EXPORT_BATCH = 500
PRUNE_EVERY = 24 * 3600.0


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    ok: bool
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: AuditEvent) -> AuditEntry:
        return cls(row.id, row.at, row.actor, row.action, row.target, row.address, row.ok,
                   dict(row.detail or {}))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "target": self.target, "address": self.address,
                "ok": self.ok, "detail": self.detail}

    def as_line(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), sort_keys=True) + "\n"


@dataclass(frozen=True)
class AuditQuery:
    """A filter: every field optional. ``action`` matches itself and its dotted children
    ("login" matches "login.ok" and "login.failed"); ``user`` matches who acted and whom or
    what it was done to (the account, or one of its workspaces "user/name")."""

    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None
    action: str | None = None
    before_id: int | None = None
    after_id: int | None = None

    def apply(self, statement: Select[AuditEvent]) -> Select[AuditEvent]:
        if self.since is not None:
            statement = statement.where(AuditEvent.at >= self.since)
        if self.until is not None:
            statement = statement.where(AuditEvent.at < self.until)
        if self.user:
            statement = statement.where(or_(
                AuditEvent.actor == self.user, AuditEvent.target == self.user,
                AuditEvent.target.startswith(f"{self.user}/", autoescape=True)))
        if self.action:
            action = self.action.rstrip(".")
            statement = statement.where(or_(
                AuditEvent.action == action,
                AuditEvent.action.startswith(f"{action}.", autoescape=True)))
        if self.before_id is not None:
            statement = statement.where(AuditEvent.id < self.before_id)
        if self.after_id is not None:
            statement = statement.where(AuditEvent.id > self.after_id)
        return statement


class AuditLog:
    def __init__(self, db: Database, retention_days: int = 365) -> None:
        self.db = db
        self.retention_days = retention_days

    async def record(self, action: str, *, actor: str, target: str = "", address: str = "",
                     ok: bool = True, **detail: Any) -> None:
        """Add one entry. Never raises: an audit write that fails must not fail the login
        or the change it describes; the failure is logged instead."""
        try:
            values = _fit(action=action, actor=actor or "", target=target or "",
                          address=address or "")
            async with self.db.session() as session:
                session.add(AuditEvent(ok=ok, detail=_plain(detail), **values))
        except Exception:
            log.exception("could not write the audit entry %s by %r on %r", action, actor,
                          target)

    async def query(self, filters: AuditQuery | None = None, *, limit: int = 100
                    ) -> list[AuditEntry]:
        """The matching entries, newest first, at most ``limit`` (capped at MAX_LIMIT)."""
        statement = (filters or AuditQuery()).apply(select(AuditEvent))
        statement = statement.order_by(AuditEvent.id.desc()).limit(
            max(1, min(limit, MAX_LIMIT)))
        async with self.db.session() as session:
            return [AuditEntry.of(row) for row in await session.scalars(statement)]

    async def export_lines(self, filters: AuditQuery | None = None,
                           limit: int | None = None) -> AsyncIterator[str]:
        """Every matching entry as one JSON line, newest first, read in batches so a year of
        entries never sits in memory at once."""
        filters = filters or AuditQuery()
        left = limit
        while left is None or left > 0:
            size = EXPORT_BATCH if left is None else min(left, EXPORT_BATCH)
            batch = await self.query(filters, limit=size)
            for entry in batch:
                yield entry.as_line()
            if len(batch) < size:
                return
            left = None if left is None else left - len(batch)
            filters = AuditQuery(filters.since, filters.until, filters.user, filters.action,
                                 before_id=batch[-1].id, after_id=filters.after_id)

    async def prune(self, now: datetime | None = None) -> int:
        """Delete the entries older than the retention; the number deleted (0: keep all)."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        async with self.db.session() as session:
            result = await session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def prune_forever(self, every: float = PRUNE_EVERY) -> None:
        """Prune now, then once a day (Hub.start_background); one failure skips one day."""
        while True:
            try:
                deleted = await self.prune()
                if deleted:
                    log.info("audit log: %d entries older than %d days deleted", deleted,
                             self.retention_days)
            except Exception:
                log.exception("audit log pruning failed; trying again in %.0f s", every)
            await asyncio.sleep(every)


def _fit(**values: str) -> dict[str, str]:
    return {key: value[:_LENGTHS[key]] for key, value in values.items()}


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    """Detail as JSON can store it: anything else (a Path, an enum) becomes its text."""
    return json.loads(json.dumps(detail, default=str))
