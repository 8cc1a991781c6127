"""What admins and instructors do with apps (add, change, drain, refresh, delete) and what
they see of a pool; the store records it, the pools act on it."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from labspace.apps.model import AppDefinition
from labspace.apps.pool import AppPools
from labspace.apps.ratelimit import ClaimRate
from labspace.apps.store import AppRecord, AppStore
from labspace.errors import Conflict
from labspace.templates.store import TemplateStore


@dataclass(frozen=True)
class PoolStatus:
    app: AppRecord
    ready: int
    starting: int
    claimed: int
    queued: int
    ended: dict[str, int]  # why containers went, since the hub started
    latency: dict[str, Any]  # the claim-latency histogram

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "starting": self.starting, "claimed": self.claimed,
                "queued": self.queued, "culled": self.app.culled_total,
                "claims": self.app.claims_total, "ended_since_start": self.ended,
                "claim_latency_seconds": self.latency, "draining": self.app.draining,
                "generation": self.app.generation}


class AppService:
    def __init__(self, store: AppStore, pools: AppPools, templates: TemplateStore,
                 rate: ClaimRate) -> None:
        self.store = store
        self.pools = pools
        self.templates = templates
        self.rate = rate  # claims per client address

    async def add(self, definition: AppDefinition, *, by: str) -> AppRecord:
        await self.templates.get(definition.template)  # NotFound names the missing template
        record = await self.store.add(definition, by=by)
        self.pools.adopt(record)
        return record

    async def update(self, definition: AppDefinition) -> AppRecord:
        """New settings; a new template or path reaches the spares by a refresh (done here
        when they changed), claims keep what they were started with."""
        await self.templates.get(definition.template)
        old = await self.store.get(definition.name)
        record = await self.store.replace(definition)
        if (old.definition.template, old.definition.path, old.definition.ready_path) != (
                definition.template, definition.path, definition.ready_path):
            record = await self.store.next_generation(definition.name)
        self.pools.adopt(record)
        return record

    async def list(self) -> builtins.list[AppRecord]:
        return await self.store.list()

    async def get(self, name: str) -> AppRecord:
        return await self.store.get(name)

    async def drain(self, name: str) -> AppRecord:
        """Stop handing out and remove the spares; claims run on until they end."""
        record = await self.store.set_draining(name, True)
        self.pools.adopt(record)
        return record

    async def refresh(self, name: str) -> AppRecord:
        """Replace the spares (after an image or template change); leaves claims alone and
        ends a drain."""
        record = await self.store.next_generation(name)
        self.pools.adopt(record)
        return record

    async def delete(self, name: str) -> None:
        await self.store.get(name)
        self.pools.drop(name)
        await self.store.delete(name)

    async def status(self, name: str) -> PoolStatus:
        record = await self.store.get(name)
        try:
            pool = self.pools.pool(name)
        except LookupError as error:  # pragma: no cover - the store and pools agree
            raise Conflict(str(error)) from error
        return PoolStatus(record, len(pool.ready), len(pool.starting), len(pool.claimed),
                          len(pool.queue), dict(pool.ended), pool.latency.as_dict())
