"""The pools: spares kept ready, handed out in one step, culled when idle or old.

Everything a claim touches is in memory, in one event loop: taking a spare is a ``popleft``
with no ``await`` before it, so two claims never get one container. The database records each
change before anyone is sent to a container (the proxy routes claims from it, and a restarted
hub rebuilds the pools from it and from the containers' labels).

A spare counts only once its readiness URL answers 200. Claims and waiting browsers trigger
replenishment at once; starts are bounded (``app_starts_at_once``) across all pools. Claimed
containers are never reused: a claim ends by removing its container.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from labspace.apps.model import AppDefinition
from labspace.apps.queue import ClaimQueue, LatencyHistogram, Ticket
from labspace.apps.readiness import wait_placed, wait_ready
from labspace.apps.spec import (
    base_url,
    build_app_container,
    new_slot,
    proxy_spec,
    ready_url,
    secret_header,
)
from labspace.apps.store import AppRecord, AppStore, SlotRecord
from labspace.config import Settings
from labspace.errors import LabspaceError, NotFound, StartFailed
from labspace.runtime import Runtime
from labspace.runtime.base import LABEL_APP, LABEL_INSTANCE, LABEL_SLOT
from labspace.templates.model import TemplateSpec
from labspace.templates.store import TemplateStore
from labspace.workspaces.activity import ActivitySnapshot

log = logging.getLogger(__name__)

# The proxy's record of use ("claim:<slot>" keys): workspaces/activity.py's ProxyActivity.
Activity = Callable[[], Awaitable[ActivitySnapshot]]
CHECK_CONTAINERS_EVERY = 10  # pool rounds between looks at the engine for exited containers
RUSH_DEFERS_AT_MOST = 5  # a long rush: replacements start after 5 x app_replenish_quiet


class AtCapacity(LabspaceError):
    http_status = 503


class NotHandingOut(LabspaceError):
    http_status = 503


@dataclass(frozen=True)
class Claimed:
    app: str
    slot: str
    token: str  # the claim cookie's value; the database keeps its SHA-256 only
    url: str  # where the browser goes: the app's path under the claim's base URL


@dataclass(frozen=True)
class Waiting:
    app: str
    ticket: str
    position: int


@dataclass
class Pool:
    record: AppRecord
    ready: deque[SlotRecord] = field(default_factory=deque)
    starting: dict[str, SlotRecord | None] = field(default_factory=dict)
    claimed: dict[str, SlotRecord] = field(default_factory=dict)
    queue: ClaimQueue = field(default_factory=ClaimQueue)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    ended: Counter[str] = field(default_factory=Counter)  # why containers went, since start
    failures: int = 0  # consecutive failed starts: they back off
    retry_at: float = 0.0
    rush_began: float = 0.0  # monotonic: the first claim of the claims now coming in
    last_claim: float = 0.0

    @property
    def definition(self) -> AppDefinition:
        return self.record.definition


def claim_key(slot: str) -> str:
    """The proxy's activity key of a claim (proxy/activity.py's claim_key)."""
    return f"claim:{slot}"


def claim_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _no_activity() -> ActivitySnapshot:
    return ActivitySnapshot()  # unavailable: no claim is culled as idle


async def _quiet(_line: str) -> None:
    return None


class AppPools:
    def __init__(self, settings: Settings, store: AppStore, runtime: Runtime,
                 templates: TemplateStore, activity: Activity = _no_activity) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.templates = templates
        self.activity = activity
        self._pools: dict[str, Pool] = {}
        self._starts = asyncio.Semaphore(max(1, settings.app_starts_at_once))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._network_done = False
        self._network_lock = asyncio.Lock()
        self._rebuilt = False

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Rebuild the pools now (or, with the engine down, in the first round that can),
        then keep them."""
        try:
            await self._rebuild()
        except LabspaceError as error:
            log.warning("could not rebuild the app pools yet: %s", error)
        self._loop = asyncio.create_task(self._keep_forever(), name="app pools")

    async def close(self) -> None:
        """Stop keeping the pools; containers stay (a restart adopts them). Starts are
        cancelled (a restart removes what they left); removals get a few seconds to finish,
        so no database write is cut off half-way."""
        # In a task of its own: awaited directly from pytest-asyncio's fixture finalizer,
        # the same steps hung (seen in tests/apps/test_pool.py, not understood yet).
        await asyncio.create_task(self._close(), name="close app pools")

    async def _close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for task in self._tasks:
            if task.get_name().startswith("start "):
                task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _rebuild(self) -> None:
        """Pools from the database, checked against the engine: rows without a running
        container are forgotten, containers without a row removed, half-started ones
        started afresh; ready spares and claims are kept."""
        records = {record.id: record for record in await self.store.list()}
        self._pools = {record.name: Pool(record) for record in records.values()}
        found = {info.labels.get(LABEL_SLOT, ""): info for info in await self.runtime.list(
            {LABEL_INSTANCE: self.settings.instance}) if LABEL_APP in info.labels}
        doomed: list[SlotRecord] = []
        for row in sorted(await self.store.containers(),
                          key=lambda r: (r.ready_at or r.created_at).timestamp()):
            info = found.pop(row.slot, None)
            app = records.get(row.app_id)
            pool = self._pools.get(app.name) if app else None
            if pool is None or info is None or not info.running or row.state == "starting":
                doomed.append(row)
                if info is not None:
                    self._remove_later(info.id)
            elif row.state == "ready":
                pool.ready.append(row)
            else:
                pool.claimed[row.slot] = row
        for info in found.values():  # a container no row knows: a crash between two steps
            self._remove_later(info.id)
        await self.store.forget(doomed)
        self._rebuilt = True
        log.info("app pools rebuilt: %s", {name: (len(p.ready), len(p.claimed))
                                            for name, p in self._pools.items()})

    # ------------------------------------------------------------------ claims

    def pool(self, name: str) -> Pool:
        pool = self._pools.get(name)
        if pool is None:
            raise NotFound(f"no app {name!r}")
        return pool

    async def claim(self, name: str, *, browser: str, address: str,
                    user: str | None = None) -> Claimed | Waiting:
        pool = self.pool(name)
        if pool.record.draining:
            raise NotHandingOut(f"{pool.definition.title} is not handing out sessions now")
        began = time.perf_counter()
        mine = [s for s in pool.claimed.values() if s.browser == browser]
        if len(mine) >= pool.definition.pool.claims_per_browser:
            # The link again: back to the newest claim it has, with a fresh cookie.
            slot = max(mine, key=lambda s: s.claimed_at.timestamp() if s.claimed_at else 0)
            token = secrets.token_urlsafe(24)
            await self.store.rotate_claim(slot, claim_digest(token))
            return Claimed(name, slot.slot, token, self._url(pool, slot.slot))
        if len(pool.claimed) >= pool.definition.pool.max_claimed:
            raise AtCapacity(f"{pool.definition.title} is at capacity "
                             f"({pool.definition.pool.max_claimed} sessions at once)")
        if pool.ready and not len(pool.queue):
            slot = pool.ready.popleft()  # the one step that decides: no await before it
            token = await self._record_claim(pool, slot, browser, address)
            pool.latency.observe(time.perf_counter() - began)
            self._claimed_now(pool)
            return Claimed(name, slot.slot, token, self._url(pool, slot.slot))
        ticket = pool.queue.join(browser, address, user)
        self._replenish(pool)
        return Waiting(name, ticket.id, pool.queue.position(ticket))

    async def wait(self, name: str, ticket_id: str, browser: str,
                   timeout: float) -> Claimed | Waiting:
        """Until the ticket is served or ``timeout`` (a long poll of the waiting page)."""
        pool = self.pool(name)
        ticket = pool.queue.find(ticket_id, browser)
        if ticket is None:
            raise NotFound("this place in the queue has expired: open the link again")
        if not ticket.ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ticket.ready.wait(), timeout)
        if ticket.slot is not None:
            pool.queue.collected(ticket)
            return Claimed(name, ticket.slot.slot, ticket.token, self._url(pool, ticket.slot.slot))
        if pool.record.draining:
            raise NotHandingOut(f"{pool.definition.title} is not handing out sessions now")
        return Waiting(name, ticket.id, pool.queue.position(ticket))

    async def _record_claim(self, pool: Pool, slot: SlotRecord, browser: str,
                            address: str) -> str:
        token = secrets.token_urlsafe(24)
        pool.claimed[slot.slot] = slot
        try:
            await self.store.claimed(slot, claim_digest=claim_digest(token), browser=browser,
                                     address=address)
        except BaseException:
            pool.claimed.pop(slot.slot, None)
            slot.state, slot.claimed_at, slot.browser = "ready", None, None
            pool.ready.appendleft(slot)
            raise
        return token

    async def _hand_out(self, pool: Pool, slot: SlotRecord) -> None:
        """A spare just became ready: to the first in the queue, else to the spares."""
        ticket: Ticket | None = pool.queue.take()
        if ticket is None:
            pool.ready.append(slot)
            return
        try:
            ticket.token = await self._record_claim(pool, slot, ticket.browser, ticket.address)
        except BaseException:
            pool.queue.put_back(ticket)
            raise
        ticket.slot = slot
        pool.queue.deliver(ticket)
        pool.latency.observe(time.monotonic() - ticket.arrived)

    # ------------------------------------------------------------------ administration

    def names(self) -> list[str]:
        return sorted(self._pools)

    def adopt(self, record: AppRecord) -> None:
        """A new app, or new settings or state of one: kept from now on."""
        pool = self._pools.get(record.name)
        if pool is None:
            self._pools[record.name] = pool = Pool(record)
        pool.record = record
        pool.failures, pool.retry_at = 0, 0.0
        if record.draining:
            pool.queue.clear()
        self._wake.set()

    def drop(self, name: str) -> None:
        """An app deleted: its claims end and its spares go."""
        pool = self._pools.pop(name, None)
        if pool is None:
            return
        pool.queue.clear()
        for slot in [*pool.claimed.values(), *pool.ready]:
            self._end(pool, slot, "deleted")
        pool.ready.clear()

    def _url(self, pool: Pool, slot: str) -> str:
        return base_url(pool.definition.name, slot) + pool.definition.path

    # ------------------------------------------------------------------ keeping

    async def _keep_forever(self) -> None:
        rounds = 0
        while True:
            try:
                if not self._rebuilt:
                    await self._rebuild()
                activity = await self.activity()
                if rounds % CHECK_CONTAINERS_EVERY == 0:
                    await self._drop_exited()
                for pool in list(self._pools.values()):
                    self._keep(pool, activity, time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("keeping the app pools failed; trying again")
            rounds += 1
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.app_pool_interval)

    def _keep(self, pool: Pool, activity: ActivitySnapshot, now: float) -> None:
        settings = pool.definition.pool
        for slot in list(pool.claimed.values()):
            claimed = slot.claimed_at.timestamp() if slot.claimed_at else now
            # A silent proxy tells nothing: no claim ends as idle until it answers again.
            last = max(claimed, activity.last_use(claim_key(slot.slot))) if (
                activity.available) else now
            if now - claimed >= settings.max_age:
                self._end(pool, slot, "max age")
            elif now - last >= settings.idle_timeout:
                self._end(pool, slot, "idle")
        for slot in list(pool.ready):
            ready = slot.ready_at.timestamp() if slot.ready_at else now
            reason = ("drained" if pool.record.draining else
                      "refreshed" if slot.generation < pool.record.generation else
                      "max ready age" if now - ready >= settings.max_ready_age else "")
            if reason:
                pool.ready.remove(slot)
                self._end(pool, slot, reason)
        for ticket in pool.queue.drop_abandoned():
            if ticket.slot is not None:  # served, but its browser never came for it
                self._end(pool, ticket.slot, "never opened")
        self._replenish(pool)

    def _claimed_now(self, pool: Pool) -> None:
        now, quiet = time.monotonic(), self.settings.app_replenish_quiet
        if now - pool.last_claim > quiet:
            pool.rush_began = now
        pool.last_claim = now
        if not pool.ready or quiet == 0:
            self._wake.set()  # nothing left to hand out: replace now
        else:
            asyncio.get_running_loop().call_later(quiet, self._wake.set)

    def _rush_on(self, pool: Pool) -> bool:
        """Claims are coming in and spares are left for them: their replacements wait, so
        their starts (seconds of CPU each) do not slow the claims of the rush."""
        now, quiet = time.monotonic(), self.settings.app_replenish_quiet
        return bool(pool.ready) and not len(pool.queue) and (
            now - pool.last_claim < quiet and now - pool.rush_began < RUSH_DEFERS_AT_MOST * quiet)

    def _replenish(self, pool: Pool) -> None:
        if pool.record.draining or time.monotonic() < pool.retry_at or self._rush_on(pool):
            return
        settings = pool.definition.pool
        have = len(pool.ready) + len(pool.starting)
        room = settings.max_claimed - len(pool.claimed) - have
        for _ in range(min(settings.spares + len(pool.queue) - have, room)):
            slot = new_slot()
            pool.starting[slot] = None  # counted now, so the next call does not start it again
            self._spawn(self._start_one(pool, slot), f"start {slot}")

    def _end(self, pool: Pool, slot: SlotRecord, reason: str) -> None:
        """Remove the container and forget it; a claim that ends is counted as culled."""
        pool.claimed.pop(slot.slot, None)
        pool.ended[reason] += 1
        (log.warning if reason == "exited" else log.info)(
            "app %s: %s %s ended (%s)", pool.definition.name, slot.state, slot.slot, reason)
        culled = slot.state == "claimed"
        self._spawn(self._remove(pool, slot, culled))

    async def _remove(self, pool: Pool, slot: SlotRecord, culled: bool) -> None:
        if slot.container_id:
            with contextlib.suppress(LabspaceError):
                await self.runtime.remove(slot.container_id)
        await self.store.forget([slot])
        if culled:
            await self.store.count_culled(pool.record)

    async def _drop_exited(self) -> None:
        """Claims and spares whose container exited or vanished (a crash, an OOM kill)."""
        running = {info.labels.get(LABEL_SLOT) for info in await self.runtime.list(
            {LABEL_INSTANCE: self.settings.instance}) if info.running}
        for pool in self._pools.values():
            for slot in [*pool.claimed.values(), *pool.ready]:
                if slot.slot not in running:
                    if slot in pool.ready:
                        pool.ready.remove(slot)
                    self._end(pool, slot, "exited")

    # ------------------------------------------------------------------ starting

    async def _start_one(self, pool: Pool, slot: str) -> None:
        """One spare, from nothing to handed out; it counts as starting until it is in the
        spares or a claim (so replenishing never starts one too many meanwhile)."""
        record: SlotRecord | None = None
        try:
            async with self._starts:
                if self._pools.get(pool.definition.name) is not pool or pool.record.draining:
                    return
                template = await self.templates.get(pool.definition.template)
                secret = secrets.token_urlsafe(24)
                record = await self.store.new_container(
                    pool.record.id, slot, secret, pool.record.generation, proxy_spec(template))
                pool.starting[slot] = record
                await self._run(pool, record, template)
            pool.failures = 0
            if self._pools.get(pool.definition.name) is not pool or pool.record.draining:
                await self._remove(pool, record, culled=False)
                return
            await self.store.ready(record)
            await self._hand_out(pool, record)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            pool.failures += 1
            pool.retry_at = time.monotonic() + min(60.0, 2.0 ** pool.failures)
            log.warning("app %s: a spare failed to start (%s); next try in %.0f s",
                        pool.definition.name, error, pool.retry_at - time.monotonic())
            if record is not None:
                await self._remove(pool, record, culled=False)
        finally:
            pool.starting.pop(slot, None)

    async def _run(self, pool: Pool, record: SlotRecord, template: TemplateSpec) -> None:
        """Create and start the container, then wait for its readiness URL."""
        await self._ensure_network()
        image = await self.runtime.ensure_image(template.image, _quiet)
        spec = build_app_container(
            instance=self.settings.instance, network=self.settings.docker_network,
            app=pool.definition.name, slot=record.slot, secret=record.secret,
            generation=record.generation, template=template, uid=self.settings.app_uid)
        info = await self.runtime.create(dataclasses.replace(spec, image=image))
        record.container_id = info.id
        info = await self.runtime.start(info.id)
        if self._http is None:
            self._http = aiohttp.ClientSession(auto_decompress=False)
        deadline = time.monotonic() + self.settings.start_timeout
        info = await wait_placed(self.runtime, info, deadline)  # a swarm places it later
        target = info.endpoints.get(template.app.port)
        if not target:
            raise StartFailed("the container has no address on the workspaces' network")
        await self.store.started(record, info.id, target)
        await wait_ready(self._http, self.runtime, ready_url(
            target, pool.definition.name, record.slot, template, pool.definition.ready_path),
            secret_header(template, record.secret), info.id, deadline)

    async def _ensure_network(self) -> None:
        async with self._network_lock:  # concurrent starts: one check, not one each
            if not self._network_done:
                host_ports = [self.settings.public_port] if self.settings.isolate_host else None
                await self.runtime.ensure_network(self.settings.docker_network, host_ports)
                self._network_done = True

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str = "remove") -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _remove_later(self, container_id: str) -> None:
        async def remove() -> None:
            with contextlib.suppress(LabspaceError):
                await self.runtime.remove(container_id)
        self._spawn(remove())
