"""Claims per client address: a token bucket (a burst, then a steady rate), so one client
cannot drain a pool while a class behind one NAT still gets in at once."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_ADDRESSES = 100_000  # beyond it, full buckets are forgotten first


class ClaimRate:
    def __init__(self, burst: int, per_minute: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = float(burst)
        self.per_second = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def take(self, address: str) -> float:
        """0.0 when this address may claim now (one token taken); else the seconds until
        it may."""
        now = self.clock()
        tokens, at = self._buckets.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_second)
        if tokens < 1.0:
            self._buckets[address] = (tokens, now)
            return (1.0 - tokens) / self.per_second
        if len(self._buckets) >= MAX_ADDRESSES and address not in self._buckets:
            self._forget_full(now)
        self._buckets[address] = (tokens - 1.0, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        full = [a for a, (t, at) in self._buckets.items()
                if t + (now - at) * self.per_second >= self.burst]
        for address in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[address]
