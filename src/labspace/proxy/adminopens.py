"""Recording "an admin opened someone else's workspace" in the audit log, from the proxy.

Only the proxy sees these opens (the hub never serves a workspace's pages), but the proxy
must stay lean and fast: so each (admin, workspace) is recorded at most once per window
(ten minutes: an open workspace makes hundreds of requests), the write runs in the
background (the request never waits for it), and at most ``max_pending`` writes are in
flight (a slow database drops notes rather than piling up tasks). The write itself is the
source's (dbsource.py: one INSERT with the proxy's own driver).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

ACTION = "workspace.admin_open"
WINDOW_S = 600.0
MAX_PENDING = 64
MAX_REMEMBERED = 10_000


@runtime_checkable
class AuditSink(Protocol):
    async def record_audit(self, action: str, actor: str, target: str, address: str) -> None:
        """Write one audit entry; may raise (AdminOpens logs it)."""
        ...


class AdminOpens:
    def __init__(self, sink: AuditSink | None, window: float = WINDOW_S,
                 max_pending: int = MAX_PENDING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink = sink
        self.window = window
        self.max_pending = max_pending
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}  # (admin, "owner/ws") -> when noted
        self._pending: set[asyncio.Task[None]] = set()

    def note(self, admin: str, target: str, address: str) -> None:
        """Record the open unless this admin's was recorded within the window. Returns at
        once: never awaits the database."""
        if self.sink is None:
            return
        now = self.clock()
        key = (admin, target)
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            return
        if len(self._pending) >= self.max_pending:
            log.warning("audit: %s opened %s; not recorded (%d writes pending)", admin,
                        target, len(self._pending))
            return
        self._remember(key, now)
        task = asyncio.get_running_loop().create_task(self._write(admin, target, address))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _remember(self, key: tuple[str, str], now: float) -> None:
        if len(self._last) >= MAX_REMEMBERED:  # forget the expired ones: bounded memory
            self._last = {k: t for k, t in self._last.items() if now - t < self.window}
        self._last[key] = now

    async def _write(self, admin: str, target: str, address: str) -> None:
        assert self.sink is not None
        try:
            await self.sink.record_audit(ACTION, admin, target, address)
        except Exception:
            log.exception("audit: could not record that %s opened %s", admin, target)
            self._last.pop((admin, target), None)  # try again on the next request

    async def drain(self) -> None:
        """Wait for the writes in flight (shutdown, tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
