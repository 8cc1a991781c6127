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

Each table forgets a key once its failures are too old to matter and keeps at most
``max_entries`` keys (the stalest go first), so a flood of made-up names or addresses cannot
grow memory.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from labspace.errors import TooManyAttempts

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """Values by key in the order they were last set: keys not set for ``keep`` seconds are
    forgotten (oldest first, so it costs nothing to check), and the stalest beyond ``size``."""

    def __init__(self, keep: float, size: int) -> None:
        self.keep = keep
        self.size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[1]

    def set(self, key: K, value: V, now: float) -> None:
        self._items[key] = (now, value)
        self._items.move_to_end(key)
        cutoff = now - self.keep
        while self._items:
            when, _ = next(iter(self._items.values()))
            if when > cutoff and len(self._items) <= self.size:
                break
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


def address_key(address: str) -> str:
    """The unit an address is counted in: itself for IPv4, its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class LoginThrottle:
    max_failures: int = 5  # rule 1: failures of one account from one address ...
    window: float = 300.0  # ... within this many seconds
    account_failures: int = 20  # rule 2: failures of one account from anywhere ...
    account_window: float = 900.0  # ... within this many seconds
    address_accounts: int = 100  # rule 3: different accounts failed from one address ...
    address_window: float = 300.0  # ... within this many seconds; also the block's length
    max_entries: int = 100_000
    clock: Callable[[], float] = time.monotonic
    # The last failure times of each (account, address) and of each account, newest last.
    _pairs: _Recent[tuple[str, str], tuple[float, ...]] = field(init=False)
    _accounts: _Recent[str, tuple[float, ...]] = field(init=False)
    # Per address: the accounts that failed from it, with their last failure; its block's end.
    _sprayed: _Recent[str, dict[str, float]] = field(init=False)
    _blocked: _Recent[str, float] = field(init=False)

    def __post_init__(self) -> None:
        # A pair stays as long as rule 2 asks whether its address failed recently.
        self._pairs = _Recent(max(self.window, self.account_window), self.max_entries)
        self._accounts = _Recent(self.account_window, self.max_entries)
        self._sprayed = _Recent(self.address_window, self.max_entries)
        self._blocked = _Recent(self.address_window, self.max_entries)

    def check(self, username: str, address: str) -> None:
        """Raise TooManyAttempts when this attempt must not even be checked."""
        now = self.clock()
        address = address_key(address)
        until = self._blocked.get(address)
        if until is not None and until > now:
            raise _too_many(until - now)
        pair = self._pairs.get((username, address))
        if not pair:
            return  # no failure for this account from here: always checked (rule 2's way in)
        if len(pair) >= self.max_failures and pair[-self.max_failures] > now - self.window:
            raise _too_many(pair[-self.max_failures] + self.window - now)
        attack_ends = self._attack_ends(username, now)
        if attack_ends is not None and pair[-1] > now - self.account_window:
            raise _too_many(min(attack_ends, pair[-1] + self.account_window) - now)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        address = address_key(address)
        pair = (username, address)
        self._pairs.set(pair, _append(self._pairs.get(pair), now, self.max_failures), now)
        self._accounts.set(
            username, _append(self._accounts.get(username), now, self.account_failures), now)
        accounts = self._sprayed.get(address) or {}
        accounts[username] = now
        if len(accounts) >= self.address_accounts:
            cutoff = now - self.address_window
            accounts = {name: when for name, when in accounts.items() if when > cutoff}
        if len(accounts) >= self.address_accounts:
            self._blocked.set(address, now + self.address_window, now)
            self._sprayed.pop(address)
        else:
            self._sprayed.set(address, accounts, now)

    def succeeded(self, username: str, address: str) -> None:
        """The password was right: this pair starts afresh and no longer counts as spraying.
        The account's own count stays: the attack on it may go on."""
        address = address_key(address)
        self._pairs.pop((username, address))
        accounts = self._sprayed.get(address)
        if accounts is not None:
            accounts.pop(username, None)

    def _attack_ends(self, username: str, now: float) -> float | None:
        """When the account stops being under attack (rule 2), or None when it is not."""
        failures = self._accounts.get(username)
        if failures is None or len(failures) < self.account_failures:
            return None
        ends = failures[-self.account_failures] + self.account_window
        return ends if ends > now else None


def _append(times: tuple[float, ...] | None, now: float, keep: int) -> tuple[float, ...]:
    """The last ``keep`` failure times, ``now`` included (tuples: small, and never shared)."""
    return ((*times, now) if times else (now,))[-keep:]


def _too_many(wait: float) -> TooManyAttempts:
    seconds = int(wait) + 1
    return TooManyAttempts(f"too many failed logins; try again in {seconds} seconds",
                           retry_after=seconds)
