"""``labspace login`` from a laptop: the device authorization flow (RFC 8628's shape).

The CLI asks for a login and gets two codes: a long secret ``device_code`` it keeps, and a
short ``user_code`` it shows. The user opens the hub in a browser where they are logged in
(any way the hub allows: password, LDAP, OIDC) and approves that user code; the CLI, polling
with its device code, then receives a token of kind "cli": scoped (no admin powers, see
web/deps.py) and expiring. No password ever passes through the CLI.

Pending logins live in this process's memory for ten minutes: a hub restart loses only the
logins under way, which the user starts again. The user code is short so people can type
it; guessing one needs a logged-in account and is throttled per account (MAX_WRONG_CODES).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from labspace.errors import InvalidInput, NotFound, TooManyAttempts

LIFETIME_S = 600.0
POLL_INTERVAL_S = 1
MAX_PENDING = 1000
MAX_PENDING_PER_ADDRESS = 10  # one client cannot fill the table and block everyone's logins
MAX_WRONG_CODES = 5  # per account, per LIFETIME_S
# No vowels (no words), no look-alikes: 20**8, about 2.6e10 codes.
ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def new_user_code() -> str:
    letters = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def normalise_code(text: str) -> str:
    letters = "".join(ch for ch in text.upper() if ch.isalnum())[:8]
    return f"{letters[:4]}-{letters[4:]}"


@dataclass
class Pending:
    device_code: str
    user_code: str
    client: str
    address: str
    expires: float
    approved_by: int | None = None  # user id
    denied: bool = False


@dataclass
class DeviceLogins:
    _by_device: dict[str, Pending] = field(default_factory=dict)
    _by_user_code: dict[str, Pending] = field(default_factory=dict)
    _wrong: dict[int, list[float]] = field(default_factory=dict)

    def begin(self, client: str, address: str) -> Pending:
        self._expire()
        mine = sum(1 for p in self._by_device.values() if p.address == address)
        if len(self._by_device) >= MAX_PENDING or mine >= MAX_PENDING_PER_ADDRESS:
            raise TooManyAttempts("too many logins under way; try again in a minute",
                                  retry_after=60)
        user_code = new_user_code()
        while user_code in self._by_user_code:
            user_code = new_user_code()
        pending = Pending(secrets.token_urlsafe(32), user_code, client[:100], address,
                          time.monotonic() + LIFETIME_S)
        self._by_device[pending.device_code] = pending
        self._by_user_code[user_code] = pending
        return pending

    def find(self, user_id: int, user_code: str) -> Pending:
        """The login a user is about to approve; wrong codes are counted per user."""
        self._expire()
        now = time.monotonic()
        wrong = [t for t in self._wrong.get(user_id, []) if t > now - LIFETIME_S]
        if len(wrong) >= MAX_WRONG_CODES:
            raise TooManyAttempts("too many wrong codes; wait a few minutes",
                                  retry_after=int(wrong[0] + LIFETIME_S - now) + 1)
        pending = self._by_user_code.get(normalise_code(user_code))
        if pending is None or pending.approved_by is not None or pending.denied:
            self._wrong[user_id] = [*wrong, now]
            raise NotFound("no login is waiting for that code (it may have expired: run "
                           "`labspace login` again)")
        return pending

    def decide(self, user_id: int, user_code: str, approve: bool) -> Pending:
        pending = self.find(user_id, user_code)
        if approve:
            pending.approved_by = user_id
        else:
            pending.denied = True
        return pending

    def poll(self, device_code: str) -> Pending:
        """The login for the CLI's device code: approved ones are handed out once."""
        self._expire()
        pending = self._by_device.get(device_code)
        if pending is None:
            raise InvalidInput("expired_token")
        if pending.approved_by is not None or pending.denied:
            self._forget(pending)
        return pending

    def _forget(self, pending: Pending) -> None:
        self._by_device.pop(pending.device_code, None)
        self._by_user_code.pop(pending.user_code, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for pending in [p for p in self._by_device.values() if p.expires < now]:
            self._forget(pending)
