"""/apps/<app>/<slot>/...: an instant app's claimed container, for the browser that claimed it.

``/apps/<app>`` itself (the link people open) is the hub's: it claims a container and sends
the browser here with the claim cookie. Here the cookie is checked against the claim's
record (its SHA-256), unless the app is shareable; a spare nobody claimed yet has no route at
all. Like a workspace in path mode, the app's pages run on labspace's own address, so the
same guards apply: no cross-origin writes or WebSockets, no service workers.

With ``apps_domain`` (host mode), a claim is served on its own host instead (claimhost.py),
and a browser that comes here is sent there: the app's pages never run on the hub's origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from labspace.origins import is_claim_slot
from labspace.proxy import gate, pages
from labspace.proxy.activity import claim_key
from labspace.proxy.forward import UpstreamUnavailable
from labspace.proxy.source import ClaimRoute, Route

if TYPE_CHECKING:
    from labspace.proxy.app import Proxy

log = logging.getLogger(__name__)

PREFIX = "/apps/"
CLAIM_COOKIE = "labspace-claim"  # web/claims.py sets it, path-scoped to the claim


def split_claim_path(path: str) -> tuple[str, str, str] | None:
    """'/apps/<app>/<slot><tail>' -> (app, slot, tail); None for any other shape (the hub's
    /apps/<app> link, or nonsense)."""
    rest = path[len(PREFIX):]
    app, slash, after = rest.partition("/")
    if not slash or not app:
        return None
    cut = min((i for i in (after.find("/"), after.find("?")) if i >= 0), default=len(after))
    slot, tail = after[:cut], after[cut:]
    return (app, slot, tail) if is_claim_slot(slot) else None


def holds_claim(request: web.BaseRequest, claim: ClaimRoute) -> bool:
    if claim.shareable:
        return True
    if not claim.claim_digest:
        return False
    return any(hmac.compare_digest(hashlib.sha256(value.encode()).hexdigest(),
                                   claim.claim_digest)
               for value in gate.cookie_values(request, CLAIM_COOKIE) if len(value) <= 200)


async def serve_claim(proxy: Proxy, request: web.Request, path: str) -> web.StreamResponse:
    """/apps/<app>/<slot>/... on labspace's own address."""
    parsed = split_claim_path(path)
    if parsed is None:
        return await proxy.to_hub(request, path)
    app, slot, tail = parsed
    if proxy.origins.apps_domain:
        # Host mode: an app's pages never run on the hub's origin; the claim's own host
        # serves them (claimhost.py), to the browser holding that host's cookie.
        if request.method in ("GET", "HEAD") and not gate.is_websocket(request):
            return pages.see_other(proxy.origins.claim_origin(slot) + path)
        return pages.cross_origin(request, "instant apps are served on their own host")
    claim = await lookup(proxy, request, app, slot)
    if not isinstance(claim, ClaimRoute):
        return claim
    if not holds_claim(request, claim):
        return pages.claim_elsewhere(request, app)
    return await forward_claim(proxy, request, claim, path, tail, own_host=False)


async def lookup(proxy: Proxy, request: web.Request, app: str,
                 slot: str) -> ClaimRoute | web.Response:
    """The claim's route when it is claimed and started, else the page saying why not."""
    for attempt in (1, 2):
        try:
            claim = await proxy.source.claim_route(app, slot)
        except Exception:
            log.exception("route source failed looking up claim %s/%s", app, slot)
            return pages.source_down(request)
        if claim is not None and claim.target is not None:
            return claim
        if attempt == 1:
            # Not from a cached answer, and not a read that raced the hub's commit: a claim
            # the browser was just sent to must not show "ended" (seen, rarely, in CI).
            proxy.source.forget_claim(app, slot)
            await asyncio.sleep(0.05)
    log.warning("claim %s/%s: no such claimed container (ended, or never claimed)", app, slot)
    return pages.claim_ended(request, app)


async def forward_claim(proxy: Proxy, request: web.Request, claim: ClaimRoute, path: str,
                        tail: str, *, own_host: bool) -> web.StreamResponse:
    """Forward to a claim its browser was let in to. ``own_host`` False: on labspace's own
    origin (path mode), where the app may not register service workers either."""
    websocket = gate.is_websocket(request)
    refused = proxy.cross_origin_refusal(request, websocket)
    if refused is not None:
        return refused
    if not own_host and gate.is_service_worker_script(request):
        return pages.no_service_worker(request)
    app, slot = claim.app, claim.slot
    route = Route(owner=app, workspace=slot, state="running", target=claim.target,
                  secret_header=claim.secret_header, secret_value=claim.secret_value,
                  strip_prefix=claim.strip_prefix)
    try:
        return await proxy.forward(request, route, path, tail, websocket,
                                   activity=claim_key(slot))
    except UpstreamUnavailable as exc:
        proxy.source.forget_claim(app, slot)  # ended (its container removed), or crashed
        log.warning("claim %s/%s not answering: %s", app, slot, exc)
        proxy.metrics.upstream_error("claim")
        return pages.claim_ended(request, app)
