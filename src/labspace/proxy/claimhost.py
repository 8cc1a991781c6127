"""An instant app's claim on its own host (host mode): ``<slot>.<apps_domain>``.

With ``apps_domain`` set, the hub does not send a browser that claims a container to
``/apps/<app>/<slot>/...`` on its own address but to this host's ``/_labspace/claim`` with a
ticket (labspace.identity.hostauth): genuine, for this host, not expired, never used before,
and naming the claim's current digest. It becomes a cookie for this host alone, and the
browser goes on to ``/apps/<app>/<slot>/...`` here: the path the container was started
under, so it needs no restart and its base URL is the same in both modes.

Everything else on the host must be that claim's path (never the hub's pages, never another
claim's), and it goes to the claim's container when the request holds this host's cookie
naming the claim's current digest, or when the app is shareable. The hub's session cookie
is host-only: it never reaches this host, and nothing here needs it.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from labspace.identity.hostauth import claim_cookie_name
from labspace.origins import CLAIM_PATH, split_host
from labspace.proxy import gate, pages
from labspace.proxy.claims import PREFIX, forward_claim, lookup, split_claim_path
from labspace.proxy.source import ClaimRoute

if TYPE_CHECKING:
    from labspace.proxy.app import Proxy

log = logging.getLogger(__name__)


async def serve(proxy: Proxy, request: web.Request, slot: str) -> web.StreamResponse:
    host = split_host(request.host)
    if request.path == CLAIM_PATH:
        return await redeem(proxy, request, host, slot)
    path = request.raw_path
    parsed = split_claim_path(path) if path.startswith(PREFIX) else None
    if parsed is None or parsed[1] != slot:
        return pages.not_found(request)  # a claim host serves its own claim, nothing else
    app, _, tail = parsed
    claim = await lookup(proxy, request, app, slot)
    if not isinstance(claim, ClaimRoute):
        return claim
    if not claim.shareable:
        held = await _held(proxy, request, host, claim)
        if held is None:
            return pages.claim_elsewhere(request, app)
        if not isinstance(held, ClaimRoute):
            return held
        claim = held
    return await forward_claim(proxy, request, claim, path, tail, own_host=True)


def cookie_digests(proxy: Proxy, request: web.BaseRequest, host: str) -> list[str]:
    """The claim digests that this request's cookies genuinely name for ``host``."""
    name = claim_cookie_name(proxy.hosts.secure)
    found = (proxy.hosts.signer.open_claim_cookie(value, host)
             for value in gate.cookie_values(request, name))
    return [claim for claim in found if claim]


def _matches(digests: list[str], claim: ClaimRoute) -> bool:
    return bool(claim.claim_digest) and any(
        hmac.compare_digest(found, claim.claim_digest) for found in digests)


async def _held(proxy: Proxy, request: web.Request, host: str,
                claim: ClaimRoute) -> ClaimRoute | web.Response | None:
    """The claim, re-read if need be, when this request's cookie names its digest; None
    when it does not (a copied link, another browser)."""
    digests = cookie_digests(proxy, request, host)
    if not digests:
        return None
    if _matches(digests, claim):
        return claim
    # A genuine cookie of this host, but not the cached digest: its browser opened the link
    # again and was handed a new one, newer than the cache. Read the claim afresh, once.
    proxy.source.forget_claim(claim.app, claim.slot)
    fresh = await lookup(proxy, request, claim.app, claim.slot)
    if not isinstance(fresh, ClaimRoute):
        return fresh
    return fresh if _matches(digests, fresh) else None


async def redeem(proxy: Proxy, request: web.Request, host: str,
                 slot: str) -> web.StreamResponse:
    """/_labspace/claim?ticket=...&next=/apps/<app>/<slot>/...: the hub's ticket in, this
    host's cookie out."""
    hosts = proxy.hosts
    ticket = hosts.signer.open_claim_ticket(request.query.get("ticket", ""), host)
    if ticket is None or not hosts.nonces.use(ticket.nonce, ticket.expires):
        return pages.claim_link_refused(request, ticket.app if ticket else None)
    claim = await lookup(proxy, request, ticket.app, slot)
    if isinstance(claim, ClaimRoute) and not _matches([ticket.claim_digest], claim):
        proxy.source.forget_claim(ticket.app, slot)  # the cache may predate this claim
        claim = await lookup(proxy, request, ticket.app, slot)
    if not isinstance(claim, ClaimRoute):
        return claim
    if not _matches([ticket.claim_digest], claim):
        # The claim was handed a newer token since (the link opened again): this ticket
        # names one that no longer opens it.
        return pages.claim_link_refused(request, ticket.app)
    prefix = f"{PREFIX}{ticket.app}/{slot}/"
    response = pages.see_other(_next(request, prefix))
    response.set_cookie(claim_cookie_name(hosts.secure),
                        hosts.signer.claim_cookie(host, ticket.claim_digest),
                        path="/", httponly=True, samesite="Lax", secure=hosts.secure)
    # The ticket is spent, but keep it out of Referer headers all the same.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _next(request: web.BaseRequest, prefix: str) -> str:
    """Where to go: a path of this claim on this host only (never another site)."""
    target = request.query.get("next", "")
    if (target.startswith(prefix) and "\\" not in target and "//" not in target
            and target.isprintable()):
        return target
    return prefix
