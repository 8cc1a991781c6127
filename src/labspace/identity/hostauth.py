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

A cookie shown to another host fails its signature check, so one workspace's cookie is worth
nothing on any other. Stdlib only: the proxy imports it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

TICKET_TTL = 60
APP_COOKIE = "labspace-app"
SECURE_APP_COOKIE = "__Host-labspace-app"
_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Ticket:
    host: str
    session_digest: str
    expires: int
    nonce: str


class HostSigner:
    """Signs and checks tickets and host cookies with keys derived from ``key``."""

    def __init__(self, key: str) -> None:
        secret = key.encode()
        self._ticket_key = hmac.new(secret, b"labspace host ticket", hashlib.sha256).digest()
        self._cookie_key = hmac.new(secret, b"labspace host cookie", hashlib.sha256).digest()

    @staticmethod
    def _seal(key: bytes, fields: list[str]) -> str:
        body = _b64("|".join(fields).encode())
        mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
        return f"{_VERSION}.{body}.{mac}"

    @staticmethod
    def _open(key: bytes, value: str, count: int) -> list[str] | None:
        if len(value) > 1000:
            return None
        version, _, rest = value.partition(".")
        body, _, mac = rest.partition(".")
        if version != _VERSION or not body or not mac:
            return None
        expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, mac):
            return None
        try:
            fields = _unb64(body).decode().split("|")
        except (ValueError, UnicodeDecodeError):
            return None
        return fields if len(fields) == count else None

    def ticket(self, host: str, session_digest: str, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + TICKET_TTL)
        return self._seal(self._ticket_key,
                          [host.lower(), session_digest, str(expires), secrets.token_hex(16)])

    def open_ticket(self, value: str, host: str, *, now: float | None = None) -> Ticket | None:
        """The ticket if it is genuine, for ``host`` and not expired; None otherwise.
        (Single use is the caller's part: it remembers nonces until they expire.)"""
        fields = self._open(self._ticket_key, value, 4)
        if fields is None or not fields[2].isdigit():
            return None
        ticket = Ticket(host=fields[0], session_digest=fields[1], expires=int(fields[2]),
                        nonce=fields[3])
        if ticket.host != host.lower() or ticket.expires < (time.time() if now is None else now):
            return None
        return ticket

    def cookie(self, host: str, session_digest: str) -> str:
        return self._seal(self._cookie_key, [host.lower(), session_digest])

    def open_cookie(self, value: str, host: str) -> str | None:
        """The session digest a host cookie carries, if it is genuine and for ``host``."""
        fields = self._open(self._cookie_key, value, 2)
        if fields is None or fields[0] != host.lower():
            return None
        return fields[1]


def app_cookie_name(secure: bool) -> str:
    return SECURE_APP_COOKIE if secure else APP_COOKIE
