"""Logging a browser in on a workspace's own host: the hub's ticket in, a host cookie out.

The hub redirects a browser that opens a workspace to
``<workspace host>/_labspace/auth?ticket=...&next=/user/<owner>/<ws>/...``. Here the ticket
is checked (genuine, for this host, not expired, never used before, its hub session still
valid, its user allowed in) and exchanged for an HttpOnly cookie for this host alone; see
labspace.identity.hostauth for what the ticket and the cookie hold.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from labspace.identity.hostauth import HostSigner
from labspace.origins import Origins
from labspace.proxy import gate, pages
from labspace.proxy.source import RouteSource

log = logging.getLogger(__name__)

MAX_REMEMBERED_NONCES = 100_000


class UsedNonces:
    """Ticket nonces already redeemed, kept until their tickets would have expired anyway."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def use(self, nonce: str, expires: int) -> bool:
        """True the first time ``nonce`` is seen; False ever after (until it expires)."""
        if nonce in self._seen:
            return False
        if len(self._seen) >= MAX_REMEMBERED_NONCES:
            now = time.time()
            self._seen = {key: end for key, end in self._seen.items() if end >= now}
            if len(self._seen) >= MAX_REMEMBERED_NONCES:
                return False  # refuse rather than forget nonces that are still valid
        self._seen[nonce] = expires
        return True


class AppHosts:
    def __init__(self, origins: Origins, signer: HostSigner, cookie_name: str,
                 secure: bool) -> None:
        self.origins = origins
        self.signer = signer
        self.cookie_name = cookie_name
        self.secure = secure
        self.nonces = UsedNonces()

    def session_digests(self, request: web.BaseRequest, host: str) -> list[str]:
        """The hub sessions that this request's host cookies genuinely name for ``host``."""
        found = (self.signer.open_cookie(value, host)
                 for value in gate.cookie_values(request, self.cookie_name))
        return [session for session in found if session]

    async def redeem(self, request: web.BaseRequest, host: str, owner: str | None,
                     source: RouteSource) -> web.StreamResponse:
        """``owner`` None: a shared port's host, where anyone logged in gets a cookie (each
        request is then checked against the port's share level)."""
        ticket = self.signer.open_ticket(request.query.get("ticket", ""), host)
        if ticket is None or not self.nonces.use(ticket.nonce, ticket.expires):
            return pages.ticket_refused(request)
        principal = await source.principal(ticket.session_digest)
        if principal is None:
            return pages.ticket_refused(request)
        if owner is not None and principal.user != owner and not principal.is_admin:
            return pages.forbidden(request)
        response = pages.see_other(self._next(request, workspace=owner is not None))
        response.set_cookie(self.cookie_name, self.signer.cookie(host, ticket.session_digest),
                            path="/", httponly=True, samesite="Lax", secure=self.secure)
        # The ticket is spent, but keep it out of Referer headers all the same.
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @staticmethod
    def _next(request: web.BaseRequest, workspace: bool) -> str:
        """Where to go once logged in: a path on this host only (never another site)."""
        target = request.query.get("next", "")
        if (target.startswith("/user/" if workspace else "/") and "\\" not in target
                and "//" not in target and target.isprintable()):
            return target
        return "/"
