"""Apps and their pools' containers in the database: the record a restarted hub rebuilds its
pools from, and what the proxy reads to route a claim (proxy/dbsource.py)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update

from labspace.apps.model import AppDefinition
from labspace.errors import Conflict, NotFound
from labspace.state.db import Database
from labspace.state.models import App, AppContainer

STARTING, READY, CLAIMED = "starting", "ready", "claimed"


@dataclass(frozen=True)
class AppRecord:
    id: int
    definition: AppDefinition
    created_by: str
    created_at: datetime
    draining: bool
    generation: int
    claims_total: int
    culled_total: int

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass
class SlotRecord:
    """One pool container as stored (the pool keeps these in memory, in step)."""

    id: int
    app_id: int
    slot: str
    state: str
    generation: int
    secret: str
    created_at: datetime
    container_id: str = ""
    target: str | None = None
    ready_at: datetime | None = None
    claimed_at: datetime | None = None
    browser: str | None = None


def _app(row: App) -> AppRecord:
    return AppRecord(row.id, AppDefinition.model_validate(row.spec), row.created_by,
                     row.created_at, row.draining, row.generation, row.claims_total,
                     row.culled_total)


def _slot(row: AppContainer) -> SlotRecord:
    return SlotRecord(row.id, row.app_id, row.slot, row.state, row.generation, row.secret,
                      row.created_at, row.container_id, row.target, row.ready_at,
                      row.claimed_at, row.browser)


class AppStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ apps

    async def add(self, definition: AppDefinition, *, by: str) -> AppRecord:
        async with self.db.session() as session:
            if await session.scalar(select(App.id).where(App.name == definition.name)):
                raise Conflict(f"app {definition.name!r} exists already")
            row = App(name=definition.name, spec=definition.model_dump(mode="json"),
                      created_by=by, draining=False, generation=1, claims_total=0,
                      culled_total=0)
            session.add(row)
            await session.flush()
            return _app(row)

    async def replace(self, definition: AppDefinition) -> AppRecord:
        """New settings for an existing app; a new template or path needs a refresh to reach
        the spares already made (the caller decides)."""
        async with self.db.session() as session:
            row = await self._row(session, definition.name)
            row.spec = definition.model_dump(mode="json")
            return _app(row)

    async def get(self, name: str) -> AppRecord:
        async with self.db.session() as session:
            return _app(await self._row(session, name))

    async def list(self) -> builtins.list[AppRecord]:
        async with self.db.session() as session:
            return [_app(row) for row in await session.scalars(select(App).order_by(App.name))]

    async def set_draining(self, name: str, draining: bool) -> AppRecord:
        async with self.db.session() as session:
            row = await self._row(session, name)
            row.draining = draining
            return _app(row)

    async def next_generation(self, name: str) -> AppRecord:
        async with self.db.session() as session:
            row = await self._row(session, name)
            row.generation += 1
            row.draining = False
            return _app(row)

    async def delete(self, name: str) -> None:
        async with self.db.session() as session:
            row = await self._row(session, name)
            await session.execute(delete(AppContainer).where(AppContainer.app_id == row.id))
            await session.delete(row)

    async def count_culled(self, app: AppRecord) -> None:
        async with self.db.session() as session:  # by name too: SQLite reuses a deleted id
            await session.execute(update(App).where(App.id == app.id, App.name == app.name)
                                  .values(culled_total=App.culled_total + 1))

    @staticmethod
    async def _row(session: Any, name: str) -> App:
        row = await session.scalar(select(App).where(App.name == name))
        if row is None:
            raise NotFound(f"no app {name!r}")
        return row

    # ------------------------------------------------------------------ containers

    async def containers(self) -> builtins.list[SlotRecord]:
        async with self.db.session() as session:
            return [_slot(row) for row in await session.scalars(
                select(AppContainer).order_by(AppContainer.id))]

    async def new_container(self, app_id: int, slot: str, secret: str, generation: int,
                            spec: dict[str, Any]) -> SlotRecord:
        async with self.db.session() as session:
            row = AppContainer(app_id=app_id, slot=slot, state=STARTING, generation=generation,
                               secret=secret, spec=spec, container_id="", address="")
            session.add(row)
            await session.flush()
            return _slot(row)

    async def started(self, record: SlotRecord, container_id: str, target: str) -> None:
        record.container_id, record.target = container_id, target
        await self._set(record, container_id=container_id, target=target)

    async def ready(self, record: SlotRecord) -> None:
        record.state, record.ready_at = READY, datetime.now(UTC)
        await self._set(record, state=READY, ready_at=record.ready_at)

    async def claimed(self, record: SlotRecord, *, claim_digest: str, browser: str,
                      address: str) -> None:
        """Recorded before the claimer is sent there: the proxy routes it from this row, and
        a restarted hub never hands it out again."""
        record.state, record.claimed_at, record.browser = CLAIMED, datetime.now(UTC), browser
        async with self.db.session() as session:
            await session.execute(update(AppContainer).where(
                AppContainer.id == record.id, AppContainer.slot == record.slot).values(
                state=CLAIMED, claimed_at=record.claimed_at, claim_digest=claim_digest,
                browser=browser, address=address[:100]))
            await session.execute(update(App).where(App.id == record.app_id).values(
                claims_total=App.claims_total + 1))

    async def unclaimed(self, record: SlotRecord) -> None:
        """Undo a claim whose recording failed half-way (it is a spare again)."""
        record.state, record.claimed_at, record.browser = READY, None, None
        await self._set(record, state=READY, claimed_at=None, claim_digest=None,
                        browser=None)

    async def rotate_claim(self, record: SlotRecord, claim_digest: str) -> None:
        await self._set(record, claim_digest=claim_digest)

    async def forget(self, records: builtins.list[SlotRecord]) -> None:
        if records:
            async with self.db.session() as session:
                await session.execute(delete(AppContainer).where(
                    AppContainer.slot.in_([record.slot for record in records])))

    async def _set(self, record: SlotRecord, **values: Any) -> None:
        """Rows are found by id *and* slot: SQLite gives a deleted row's id to the next
        insert, so a late write about a container already forgotten (an app deleted while its
        removals ran) would otherwise land on another app's claim. Slots are never reused."""
        async with self.db.session() as session:
            await session.execute(update(AppContainer).where(
                AppContainer.id == record.id, AppContainer.slot == record.slot).values(**values))
