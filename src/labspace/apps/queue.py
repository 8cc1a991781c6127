"""Who waits for a spare, in arrival order, and the claim-latency figures of a pool.

A browser that finds no spare gets a ticket: its place in the queue, and the claim cookie
it will get once a container is ready. Each ready container goes to the first live ticket;
tickets whose browser stopped asking (closed the tab) are dropped, so nobody waits behind
a ghost.
"""

from __future__ import annotations

import asyncio
import bisect
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

# A waiting page asks at least every 20 s (a long poll); one silent for this long has left.
ABANDONED_AFTER = 45.0
# Claim latency buckets (seconds), as Prometheus histograms have them: <= each bound.
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                  120.0)


@dataclass
class Ticket:
    id: str
    browser: str
    address: str
    user: str | None
    arrived: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    slot: Any = None  # the pool's slot, once one was handed to this ticket
    token: str = ""  # the claim cookie's value, made when the slot is handed over
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class ClaimQueue:
    def __init__(self) -> None:
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()  # waiting, oldest first
        self._handed: dict[str, Ticket] = {}  # served, until their browser collects them

    def __len__(self) -> int:
        return len(self._tickets)

    def join(self, browser: str, address: str, user: str | None) -> Ticket:
        """The browser's ticket: its existing one (a reload keeps its place), or a new one."""
        for ticket in self._tickets.values():
            if ticket.browser == browser:
                ticket.seen = time.monotonic()
                return ticket
        ticket = Ticket(secrets.token_urlsafe(16), browser, address, user)
        self._tickets[ticket.id] = ticket
        return ticket

    def find(self, ticket_id: str, browser: str) -> Ticket | None:
        """A ticket only for the browser it was given to."""
        ticket = self._tickets.get(ticket_id) or self._handed.get(ticket_id)
        if ticket is None or not secrets.compare_digest(ticket.browser, browser):
            return None
        ticket.seen = time.monotonic()
        return ticket

    def position(self, ticket: Ticket) -> int:
        """1 for the first in line; 0 once served."""
        for place, tid in enumerate(self._tickets, start=1):
            if tid == ticket.id:
                return place
        return 0

    def take(self) -> Ticket | None:
        """The first in line, out of the line (a container is being handed to it)."""
        ticket = next(iter(self._tickets.values()), None)
        if ticket is not None:
            del self._tickets[ticket.id]
            self._handed[ticket.id] = ticket
        return ticket

    def put_back(self, ticket: Ticket) -> None:
        """The hand-over failed: first in line again."""
        self._handed.pop(ticket.id, None)
        self._tickets[ticket.id] = ticket
        self._tickets.move_to_end(ticket.id, last=False)

    def deliver(self, ticket: Ticket) -> None:
        """Its container is recorded: its waiting page may go (ticket.slot, ticket.token)."""
        ticket.ready.set()

    def collected(self, ticket: Ticket) -> None:
        self._handed.pop(ticket.id, None)

    def drop_abandoned(self, now: float | None = None) -> list[Ticket]:
        """Waiting tickets whose page stopped asking, and served ones never collected."""
        now = time.monotonic() if now is None else now
        gone = [t for t in (*self._tickets.values(), *self._handed.values())
                if now - t.seen > ABANDONED_AFTER]
        for ticket in gone:
            self._tickets.pop(ticket.id, None)
            self._handed.pop(ticket.id, None)
        return gone

    def clear(self) -> list[Ticket]:
        waiting = list(self._tickets.values())
        self._tickets.clear()
        for ticket in waiting:
            ticket.ready.set()  # their long polls answer at once (with "draining")
        return waiting


class LatencyHistogram:
    """Claim latencies: counts per bucket, their sum and count (Prometheus' shape)."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BOUNDS) + 1)  # the last: above every bound
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def as_dict(self) -> dict[str, Any]:
        cumulative, running = [], 0
        for bound, count in zip((*LATENCY_BOUNDS, float("inf")), self.buckets, strict=True):
            running += count
            cumulative.append({"le": "+Inf" if bound == float("inf") else bound,
                               "count": running})
        return {"buckets": cumulative, "sum": round(self.total, 6), "count": self.count}
