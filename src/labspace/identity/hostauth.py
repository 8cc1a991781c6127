"""Logging in on a workspace's own host: a ticket from the hub, exchanged for a host cookie.

The hub's session cookie is host-only, so a browser never sends it to a workspace host. To
open a workspace, the hub hands the browser a ticket in a redirect; the proxy on the workspace
host checks it and sets a cookie for that host alone. Both are HMAC-signed with the
installation's signing key, each under its own derived key so that neither can pass for the
other:

- a ticket names the workspace host, the hub session it came from (its SHA-256 digest, never
  the session itself), an expiry ``TICKET_TTL`` seconds ahead and a random nonce; the proxy
  accepts each nonce once;
- a host cookie names the host and the session digest. It carries no expiry of its own: the
  proxy looks the session up on every (cached) request, so logging out, revoking the session
  or disabling the user ends the host cookie too.

A cookie shown to another host is refused, so one workspace's cookie is worth nothing on any
other.

An instant app's claim on its own host (``<slot>.<apps_domain>``) is entered the same way,
with tickets and cookies of their own kind (their own salts: neither passes for a
workspace's): a claim ticket names the claim host, the app, the claim's digest (the SHA-256
of the claim's token, as the database keeps it), an expiry and a nonce; a claim cookie names
the host and the claim's digest, checked against the claim's record on every (cached)
request, so a claim that ended or was handed a new token ends the cookie too.

Light imports (itsdangerous, already the hub's CSRF signer): the proxy uses it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

TICKET_TTL = 60
APP_COOKIE = "labspace-app"
SECURE_APP_COOKIE = "__Host-labspace-app"
CLAIM_COOKIE = "labspace-claim"
SECURE_CLAIM_COOKIE = "__Host-labspace-claim"
MAX_LENGTH = 1000  # longer is no ticket or cookie of ours: refused before any decoding


@dataclass(frozen=True)
class Ticket:
    host: str
    session_digest: str
    expires: int
    nonce: str


@dataclass(frozen=True)
class ClaimTicket:
    host: str
    app: str
    claim_digest: str
    expires: int
    nonce: str


class HostSigner:
    """Signs and checks tickets and host cookies: itsdangerous, as for the hub's CSRF tokens,
    with a salt of their own each, so neither can pass for the other."""

    def __init__(self, key: str) -> None:
        self._tickets = URLSafeSerializer(key, salt="labspace host ticket")
        self._cookies = URLSafeSerializer(key, salt="labspace host cookie")
        self._claim_tickets = URLSafeSerializer(key, salt="labspace claim ticket")
        self._claim_cookies = URLSafeSerializer(key, salt="labspace claim cookie")

    @staticmethod
    def _open(serializer: URLSafeSerializer, value: str, count: int) -> list[Any] | None:
        if len(value) > MAX_LENGTH:
            return None
        try:
            fields = serializer.loads(value)
        except BadData:
            return None
        if not isinstance(fields, list) or len(fields) != count:
            return None
        return fields

    def ticket(self, host: str, session_digest: str, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + TICKET_TTL)
        return str(self._tickets.dumps(
            [host.lower(), session_digest, expires, secrets.token_hex(16)]))

    def open_ticket(self, value: str, host: str, *, now: float | None = None) -> Ticket | None:
        """The ticket if it is genuine, for ``host`` and not expired; None otherwise.
        (Single use is the caller's part: it remembers nonces until they expire.)"""
        fields = self._open(self._tickets, value, 4)
        if fields is None or not isinstance(fields[2], int):
            return None
        ticket = Ticket(host=str(fields[0]), session_digest=str(fields[1]), expires=fields[2],
                        nonce=str(fields[3]))
        if ticket.host != host.lower() or ticket.expires < (time.time() if now is None else now):
            return None
        return ticket

    def cookie(self, host: str, session_digest: str) -> str:
        return str(self._cookies.dumps([host.lower(), session_digest]))

    def open_cookie(self, value: str, host: str) -> str | None:
        """The session digest a host cookie carries, if it is genuine and for ``host``."""
        fields = self._open(self._cookies, value, 2)
        if fields is None or fields[0] != host.lower():
            return None
        return str(fields[1])

    def claim_ticket(self, host: str, app: str, claim_digest: str, *,
                     now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + TICKET_TTL)
        return str(self._claim_tickets.dumps(
            [host.lower(), app, claim_digest, expires, secrets.token_hex(16)]))

    def open_claim_ticket(self, value: str, host: str, *,
                          now: float | None = None) -> ClaimTicket | None:
        """The claim ticket if it is genuine, for ``host`` and not expired; None otherwise.
        (Single use, and whether the claim still has that digest, are the caller's part.)"""
        fields = self._open(self._claim_tickets, value, 5)
        if fields is None or not isinstance(fields[3], int):
            return None
        ticket = ClaimTicket(host=str(fields[0]), app=str(fields[1]),
                             claim_digest=str(fields[2]), expires=fields[3],
                             nonce=str(fields[4]))
        if ticket.host != host.lower() or ticket.expires < (time.time() if now is None else now):
            return None
        return ticket

    def claim_cookie(self, host: str, claim_digest: str) -> str:
        return str(self._claim_cookies.dumps([host.lower(), claim_digest]))

    def open_claim_cookie(self, value: str, host: str) -> str | None:
        """The claim digest a claim cookie carries, if it is genuine and for ``host``."""
        fields = self._open(self._claim_cookies, value, 2)
        if fields is None or fields[0] != host.lower():
            return None
        return str(fields[1])


def app_cookie_name(secure: bool) -> str:
    return SECURE_APP_COOKIE if secure else APP_COOKIE


def claim_cookie_name(secure: bool) -> str:
    return SECURE_CLAIM_COOKIE if secure else CLAIM_COOKIE
