"""Slow down password guessing without letting anyone lock other people out.

Failed logins are counted three ways, each with its own limit (the defaults in brackets):

1. one account from one address [5 in 5 minutes]: that pair is refused, without checking the
   password, until the oldest of those failures is 5 minutes old;
2. one account from all addresses [20 in 15 minutes]: the account is *under attack*; an
   address that failed for it in the last 15 minutes is refused, but an address with no recent
   failure for it is still checked, so the real user gets in from a fresh address (a phone,
   home) with the right password while the guessers stay out;
3. one address across accounts [100 different accounts in 5 minutes]: password spraying; the
   address is refused for 5 minutes. A classroom behind one NAT address stays far below it,
   and a successful login takes its account off that address's count.

Limits 2 and 3 exist so that 1 can stay per pair: a limit per address alone would let one
student lock out the whole classroom behind its NAT, one per account alone would let anyone
lock out anyone. An IPv6 address counts as its /64, the block one subscriber gets.

This module is the rules alone, pure over a list of recent failures and a time, so they are
tested with a made-up clock; identity/failedlogins.py keeps the failures in the database.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from labspace.errors import TooManyAttempts


@dataclass(frozen=True)
class Failure:
    """One failed login."""

    account: str
    address: str  # its address_key
    at: float  # seconds, on the clock the rules are asked with
    # The password was right later, from the same address: the failure no longer counts for
    # the pair (rule 1) or for spraying (rule 3), but still for the account (rule 2).
    forgiven: bool = False


def address_key(address: str) -> str:
    """The unit an address is counted in: itself for IPv4, its /64 for IPv6 (idempotent)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class ThrottleRules:
    max_failures: int = 5  # rule 1: failures of one account from one address ...
    window: float = 300.0  # ... within this many seconds
    account_failures: int = 20  # rule 2: failures of one account from anywhere ...
    account_window: float = 900.0  # ... within this many seconds
    address_accounts: int = 100  # rule 3: different accounts failed from one address ...
    address_window: float = 300.0  # ... within this many seconds; also the block's length

    @property
    def memory(self) -> float:
        """How long a failure can matter; older ones may be forgotten. Rule 3's block lasts
        a window after a failure that found enough others in the window before it."""
        return max(self.window, self.account_window, 2 * self.address_window)

    def check(self, account: str, address: str, failures: Iterable[Failure],
              now: float) -> None:
        """Raise TooManyAttempts when this attempt must not even be checked.

        ``failures`` must hold at least the newest ``max_failures`` of this pair, the newest
        ``account_failures`` of this account, and this address's failures of the last
        ``memory`` seconds; more do no harm.
        """
        address = address_key(address)
        # Newer than now counts too: another hub's clock may run a little ahead.
        recent = [failure for failure in failures if failure.at > now - self.memory]
        waits = [wait for wait in (self._sprayed(address, recent, now),
                                   self._guessed(account, address, recent, now))
                 if wait is not None]
        if waits:
            raise too_many(max(waits))

    def _sprayed(self, address: str, failures: list[Failure], now: float) -> float | None:
        """Rule 3: the wait until the address's block ends, or None when it has none. A
        failure that found ``address_accounts`` different accounts failed within the window
        before it (itself included) blocks the address for a window."""
        ordered = sorted((f.at, f.account) for f in failures
                         if f.address == address and not f.forgiven)
        in_window: Counter[str] = Counter()
        first = 0
        ends = None
        for at, account in ordered:
            in_window[account] += 1
            while ordered[first][0] <= at - self.address_window:
                gone = ordered[first][1]
                in_window[gone] -= 1
                if not in_window[gone]:
                    del in_window[gone]
                first += 1
            if len(in_window) >= self.address_accounts:
                ends = at + self.address_window
        return ends - now if ends is not None and ends > now else None

    def _guessed(self, account: str, address: str, failures: list[Failure],
                 now: float) -> float | None:
        """Rules 1 and 2: the wait for this pair, or None when its attempt is checked."""
        pair = sorted(f.at for f in failures
                      if f.account == account and f.address == address and not f.forgiven
                      and f.at > now - max(self.window, self.account_window))
        if not pair:
            return None  # no failure for this account from here: always checked (rule 2's way in)
        waits = []
        if len(pair) >= self.max_failures and pair[-self.max_failures] > now - self.window:
            waits.append(pair[-self.max_failures] + self.window - now)
        tries = sorted(f.at for f in failures
                       if f.account == account and f.at > now - self.account_window)
        if len(tries) >= self.account_failures and pair[-1] > now - self.account_window:
            attack_ends = tries[-self.account_failures] + self.account_window
            waits.append(min(attack_ends, pair[-1] + self.account_window) - now)
        return max(waits, default=None)


def too_many(wait: float) -> TooManyAttempts:
    seconds = int(wait) + 1
    return TooManyAttempts(f"too many failed logins; try again in {seconds} seconds",
                           retry_after=seconds)
