"""Slow down password guessing: after a few failed logins for one account from one address,
further attempts are refused for a while (an attacker cannot lock a user out from elsewhere)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from labspace.errors import TooManyAttempts


@dataclass
class LoginThrottle:
    max_failures: int = 5
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str]) -> list[float]:
        cutoff = self.clock() - self.window
        recent = [t for t in self._failures.get(key, []) if t > cutoff]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def check(self, username: str, address: str) -> None:
        """Raise TooManyAttempts while this account is blocked for this address."""
        recent = self._recent((username, address))
        if len(recent) >= self.max_failures:
            wait = int(recent[0] + self.window - self.clock()) + 1
            raise TooManyAttempts(
                f"too many failed logins; try again in {wait} seconds", retry_after=wait
            )

    def failed(self, username: str, address: str) -> None:
        key = (username, address)
        self._recent(key)
        self._failures.setdefault(key, []).append(self.clock())
        if len(self._failures) > 100_000:  # bounded memory under a spray of names
            self._failures.clear()

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop((username, address), None)
