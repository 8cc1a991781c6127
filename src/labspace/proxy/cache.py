"""A small TTL cache in front of a RouteSource, so the hot path rarely asks the database.

Hits are a dict lookup and a clock read, with no lock. Misses are coalesced: while one
lookup for a key is under way, other requests for the same key await the same future
instead of asking the source again. Errors from the source are never cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from labspace.proxy.source import ClaimRoute, Principal, Route, RouteSource

V = TypeVar("V")

ROUTE_TTL = 2.0
PRINCIPAL_TTL = 10.0
NEGATIVE_TTL = 1.0
MAX_ENTRIES = 20_000


def _retrieve_exception(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # the waiters re-raise it; this only silences "never retrieved"


class TTLCache(Generic[V]):
    """A bounded mapping whose entries expire; ``None`` values get the (shorter) negative TTL,
    and values that ``settled`` says are in flux are not kept at all."""

    def __init__(
        self,
        ttl: float,
        negative_ttl: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        settled: Callable[[V], bool] = lambda _value: True,
    ) -> None:
        self._ttl = ttl
        self._negative_ttl = min(negative_ttl, ttl)
        self._max = max_entries
        self._clock = clock
        self._settled = settled
        self._entries: dict[Hashable, tuple[float, V | None]] = {}
        self._pending: dict[Hashable, asyncio.Future[V | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def forget_where(self, doomed: Callable[[V | None], bool]) -> None:
        for key in [key for key, (_, value) in self._entries.items() if doomed(value)]:
            del self._entries[key]

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V | None]]) -> V | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        task = self._pending.get(key)
        if task is None:
            # The lookup runs as its own task, shared by every request for the key, so a
            # request that is cancelled (its client left) does not cancel the others' lookup.
            task = asyncio.ensure_future(self._load(key, load))
            task.add_done_callback(_retrieve_exception)
            self._pending[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V | None]]) -> V | None:
        try:
            value = await load()
            self._store(key, value)
            return value
        finally:
            self._pending.pop(key, None)

    def _store(self, key: Hashable, value: V | None) -> None:
        if len(self._entries) >= self._max:
            self._evict()
        if value is None:
            ttl = self._negative_ttl
        elif self._settled(value):
            ttl = self._ttl
        else:
            return  # a value about to change (a starting workspace) is not worth keeping
        self._entries[key] = (self._clock() + ttl, value)

    def _evict(self) -> None:
        now = self._clock()
        expired = [key for key, (deadline, _) in self._entries.items() if deadline <= now]
        for key in expired:
            del self._entries[key]
        # still full: drop the oldest quarter (dicts keep insertion order)
        if len(self._entries) >= self._max:
            for key in list(self._entries)[: max(1, self._max // 4)]:
                del self._entries[key]


class CachedRouteSource:
    """A RouteSource that answers from a short-lived cache and asks ``source`` on misses."""

    def __init__(
        self,
        source: RouteSource,
        *,
        route_ttl: float = ROUTE_TTL,
        principal_ttl: float = PRINCIPAL_TTL,
        negative_ttl: float = NEGATIVE_TTL,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        # Only running routes are cached: a workspace that is starting becomes reachable the
        # moment it is running, not a TTL later.
        self._routes: TTLCache[Route] = TTLCache(
            route_ttl, negative_ttl, max_entries, clock,
            settled=lambda route: route.state == "running",
        )
        self._principals: TTLCache[Principal] = TTLCache(
            principal_ttl, negative_ttl, max_entries, clock
        )
        # A claim ends by its container's removal: a connection refused forgets it at once.
        self._claims: TTLCache[ClaimRoute] = TTLCache(route_ttl, negative_ttl, max_entries,
                                                      clock)
        # The hub names a share it lowers (forget_share); the TTL bounds a missed message.
        self._shares: TTLCache[str] = TTLCache(route_ttl, negative_ttl, max_entries, clock)

    async def route(self, owner: str, workspace: str) -> Route | None:
        key = (owner, workspace)
        return await self._routes.get(key, lambda: self.source.route(owner, workspace))

    async def claim_route(self, app: str, slot: str) -> ClaimRoute | None:
        return await self._claims.get((app, slot), lambda: self.source.claim_route(app, slot))

    def forget_claim(self, app: str, slot: str) -> None:
        self._claims.forget((app, slot))

    async def principal(self, token_digest: str) -> Principal | None:
        return await self._principals.get(token_digest,
                                          lambda: self.source.principal(token_digest))

    async def share_level(self, owner: str, workspace: str, port: int) -> str:
        level = await self._shares.get((owner, workspace, port),
                                       lambda: self.source.share_level(owner, workspace, port))
        return level or "private"

    def forget_share(self, owner: str, workspace: str, port: int) -> None:
        self._shares.forget((owner, workspace, port))

    def forget_principals(self, digests: list[str], users: list[str]) -> None:
        """Drop these credentials, and every credential of these users (revocation)."""
        for token_digest in digests:
            self._principals.forget(token_digest)
        if users:
            names = set(users)
            self._principals.forget_where(
                lambda principal: principal is not None and principal.user in names)

    def forget_route(self, owner: str, workspace: str) -> None:
        """Drop a cached route (e.g. after its target refused a connection)."""
        self._routes.forget((owner, workspace))

    def clear(self) -> None:
        self._routes.clear()
        self._claims.clear()
        self._principals.clear()
        self._shares.clear()
