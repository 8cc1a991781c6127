"""The load page's one sampling loop and the pages that watch it.

The loop runs only while at least one page watches (idle otherwise), and samples once per
tick whatever the number of pages. Each tick's snapshot is serialised once per kind of
viewer (admins; each ordinary user), however many pages that viewer has open. A watcher
holds one frame at most: a page that reads slower than the ticks come gets the newest and
skips the rest, so a slow client never makes the hub hold more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter

from labspace.config import Settings
from labspace.errors import TooManyAttempts
from labspace.load.collector import LoadCollector
from labspace.load.model import GpuReadings, Snapshot
from labspace.runtime import Runtime

log = logging.getLogger(__name__)

STREAMS_PER_USER = 5  # pages (tabs) of one account watching at once
PRIME_SECONDS = 0.5  # a first rate needs two readings: how far apart, when starting idle
# A watcher whose page has not asked for a frame this long is dropped: a stream asks at
# least every heartbeat, so only one whose response never ran (or never cleaned up) is.
STALE_SECONDS = 120.0


class Frame:
    """One tick's snapshot with its serialisations, each made on first use only."""

    def __init__(self, number: int, snapshot: Snapshot) -> None:
        self.number = number
        self.snapshot = snapshot
        self.at = time.monotonic()
        self._json: dict[str | None, bytes] = {}
        self._events: dict[str | None, bytes] = {}

    def json(self, owner: str | None) -> bytes:
        """The view of ``owner`` (None: an admin's, everything) as JSON."""
        if owner not in self._json:
            self._json[owner] = json.dumps(self.snapshot.view(owner),
                                           separators=(",", ":")).encode()
        return self._json[owner]

    def event(self, owner: str | None) -> bytes:
        """The same as one server-sent event (JSON has no raw newline: one data line)."""
        if owner not in self._events:
            self._events[owner] = (b"id: %d\nevent: load\ndata: " % self.number
                                   + self.json(owner) + b"\n\n")
        return self._events[owner]


class Watcher:
    """One page's place in the feed: the newest frame not yet sent, nothing more."""

    def __init__(self, user: str) -> None:
        self.user = user
        self._latest: Frame | None = None
        self._ready = asyncio.Event()
        self.asked = time.monotonic()
        self.closed = False  # dropped by the feed: the stream should end

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    def offer(self, frame: Frame) -> None:
        self._latest = frame  # an unsent older frame is dropped here
        self._ready.set()

    async def next(self, timeout: float) -> Frame | None:
        """The newest frame, or None after ``timeout`` seconds without one."""
        self.asked = time.monotonic()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return None
        self._ready.clear()
        frame, self._latest = self._latest, None
        self.asked = time.monotonic()
        return frame


class LoadFeed:
    def __init__(self, collector: LoadCollector, interval: float, *,
                 streams_per_user: int = STREAMS_PER_USER) -> None:
        self.collector = collector
        self.interval = interval
        self.streams_per_user = streams_per_user
        self._watchers: set[Watcher] = set()
        self._per_user: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._latest: Frame | None = None
        self._sampling = asyncio.Lock()
        self._number = 0
        self.ticks = 0  # samples taken, for tests and the benchmark

    @property
    def watching(self) -> int:
        return len(self._watchers)

    def watch(self, user: str) -> Watcher:
        """A new watcher of ``user``, given the newest frame at once if it is fresh;
        TooManyAttempts past the per-user cap. Pair with ``unwatch``."""
        if self._per_user[user] >= self.streams_per_user:
            raise TooManyAttempts(
                f"{user} has {self._per_user[user]} load pages open already; close one",
                retry_after=int(self.interval) + 1)
        watcher = Watcher(user)
        self._watchers.add(watcher)
        self._per_user[user] += 1
        if (latest := self._fresh()) is not None:
            watcher.offer(latest)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="load page sampling")
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        if watcher in self._watchers:
            self._watchers.discard(watcher)
            self._per_user[watcher.user] -= 1
            if self._per_user[watcher.user] <= 0:
                del self._per_user[watcher.user]

    async def frame(self) -> Frame:
        """The newest frame if fresh, else one sampled now (for a single JSON answer)."""
        if (latest := self._fresh()) is not None:
            return latest
        return await self._tick(since=time.monotonic() - self.interval)

    def _fresh(self) -> Frame | None:
        """The newest frame if it is at most about a tick old."""
        latest = self._latest
        if latest is not None and time.monotonic() - latest.at < self.interval * 1.5:
            return latest
        return None

    async def _tick(self, since: float) -> Frame:
        """A new frame; or one taken after ``since`` by a caller this one waited for."""
        async with self._sampling:
            latest = self._latest
            if latest is not None and latest.at >= since:
                return latest
            if latest is None or time.monotonic() - latest.at > 3 * self.interval:
                # Counters from long ago would average over the idle time: start afresh.
                await self.collector.sample()
                self.ticks += 1
                await asyncio.sleep(PRIME_SECONDS)
            snapshot = await self.collector.sample()
            self.ticks += 1
            self._number += 1
            self._latest = Frame(self._number, snapshot)
            return self._latest

    async def _run(self) -> None:
        while self._watchers:
            began = time.monotonic()
            try:
                frame = await self._tick(since=began)
            except Exception:  # an engine hiccup must not end the page for everybody
                log.exception("load page: sampling failed; trying again")
            else:
                for watcher in list(self._watchers):
                    if frame.at - watcher.asked > STALE_SECONDS:
                        self.unwatch(watcher)
                        watcher.close()
                    else:
                        watcher.offer(frame)
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - began)))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for watcher in self._watchers:
            watcher.close()
        self._watchers.clear()
        self._per_user.clear()


def open_feed(settings: Settings, runtime: Runtime, gpus: GpuReadings | None = None
              ) -> LoadFeed:
    """The hub's feed. The engine is this host's when reached through a unix socket (the
    default), so this host's totals and cgroup files describe it."""
    local = not settings.docker_url or settings.docker_url.startswith("unix://")
    collector = LoadCollector(runtime, instance=settings.instance, homes=settings.homes,
                              local_engine=local, interval=settings.load_interval, gpus=gpus)
    return LoadFeed(collector, settings.load_interval)
