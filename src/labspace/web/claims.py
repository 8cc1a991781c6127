"""The link students open: /apps/<app> claims a fresh, ready container and sends the browser
there (/apps/<app>/<slot>/<path>), or shows its place in the queue until one is ready.

The claim is bound to the browser: the claim cookie (path-scoped to the claim, HttpOnly) is
what the proxy lets in, unless the app is shareable. A browser id cookie counts a browser's
claims (one per app by default: the link again returns to it) and binds its queue ticket; a
browser that keeps no cookies cannot claim at all, and a client that throws them away meets
the per-address rate (apps/ratelimit.py). Nothing here answers 429 to a class that is
merely many: an empty pool queues, a full one says "at capacity".

With ``apps_domain`` (host mode), a claim is served on a host of its own
(``<slot>.<apps_domain>``, labspace.origins), so that an app's pages never run on the hub's
origin: instead of the claim URL and its cookie, the browser gets the claim host's
``/_labspace/claim`` with a one-time ticket naming the claim's digest, and the proxy there
sets the claim's cookie for that host alone (labspace.proxy.claimhost). The waiting and
capacity pages stay on the hub's address.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from labspace.apps.model import USERS
from labspace.apps.pool import AtCapacity, Claimed, NotHandingOut, Waiting, claim_digest
from labspace.apps.spec import base_url
from labspace.errors import LabspaceError, TooManyAttempts
from labspace.hub import Hub
from labspace.identity.hostauth import HostSigner
from labspace.origins import CLAIM_PATH, Origins
from labspace.web.app import error_response, templates
from labspace.web.deps import Caller, HubDep, optional_caller
from labspace.web.recorder import client_address

router = APIRouter(include_in_schema=False)

BROWSER_COOKIE = "labspace-browser"
CLAIM_COOKIE = "labspace-claim"
BROWSER_MAX_AGE = 30 * 86400
LONG_POLL = 20.0  # seconds a waiting page's request is held open


def _browser(request: Request) -> str | None:
    value = request.cookies.get(BROWSER_COOKIE, "")
    return hashlib.sha256(value.encode()).hexdigest() if 16 <= len(value) <= 64 else None


def _claimed(request: Request, hub: Hub, claimed: Claimed,
             answer: Callable[[str], Response]) -> Response:
    """``answer``, given where the browser goes, with what lets it into its claim: in path
    mode the claim's cookie; in host mode a ticket for the claim's own host."""
    origins: Origins = request.app.state.origins
    if origins.apps_domain:
        signer: HostSigner = request.app.state.host_signer
        host = origins.claim_host(claimed.slot)
        ticket = signer.claim_ticket(host, claimed.app, claim_digest(claimed.token))
        query = urlencode({"ticket": ticket, "next": claimed.url})
        response = answer(f"{origins.claim_origin(claimed.slot)}{CLAIM_PATH}?{query}")
        response.headers["Referrer-Policy"] = "no-referrer"
    else:
        response = answer(claimed.url)
        response.set_cookie(CLAIM_COOKIE, claimed.token,
                            path=base_url(claimed.app, claimed.slot), httponly=True,
                            samesite="lax", secure=hub.settings.secure_cookies)
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(request: Request, name: str, status: int, **context: object) -> Response:
    response = templates.TemplateResponse(request, name, {"caller": None, **context},
                                          status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/apps/{name}")
@router.get("/apps/{name}/")
async def open_app(name: str, request: Request, hub: HubDep,
                   caller: Annotated[Caller | None, Depends(optional_caller)],
                   cookies: Annotated[int, Query(alias="cookies", ge=0, le=1)] = 0) -> Response:
    pools = hub.apps.pools
    try:
        app = pools.pool(name).definition
    except LabspaceError as error:
        return error_response(request, error.http_status, error.message)
    if app.access == USERS and caller is None:
        return RedirectResponse(f"/hub/login?next={quote(f'/apps/{name}', safe='/')}", 303)
    browser = _browser(request)
    if browser is None:  # first visit: give it an id, and check that it keeps it
        if cookies:
            return error_response(request, 400, "This app needs cookies: allow them for "
                                  "this site and open the link again.")
        first = RedirectResponse(f"/apps/{name}?cookies=1", 303)
        first.set_cookie(BROWSER_COOKIE, secrets.token_urlsafe(24), max_age=BROWSER_MAX_AGE,
                            path="/", httponly=True, samesite="lax",
                            secure=hub.settings.secure_cookies)
        return first
    address = client_address(request)
    wait = hub.apps.rate.take(address)
    if wait:
        limited = TooManyAttempts(f"Too many sessions claimed from your address; try again "
                                  f"in {wait:.0f} s.", retry_after=int(wait) + 1)
        response = error_response(request, 429, limited.message)
        response.headers["Retry-After"] = str(limited.retry_after)
        return response
    try:
        result = await pools.claim(name, browser=browser, address=address,
                                   user=caller.name if caller else None)
    except (AtCapacity, NotHandingOut) as error:
        return _page(request, "app-unavailable.html", 503, app=app, message=error.message)
    if isinstance(result, Claimed):
        return _claimed(request, hub, result, lambda url: RedirectResponse(url, 303))
    return _page(request, "app-wait.html", 200, app=app, ticket=result.ticket,
                 position=result.position)


@router.get("/hub/apps/{name}/queue/{ticket}")
async def queue_place(name: str, ticket: str, request: Request, hub: HubDep) -> Response:
    """The waiting page's long poll: its place, or where to go once a container is its."""
    browser = _browser(request)
    if browser is None or len(ticket) > 64:
        return JSONResponse({"error": "no such place in the queue"}, status_code=404)
    try:
        result = await hub.apps.pools.wait(name, ticket, browser, LONG_POLL)
    except LabspaceError as error:
        return JSONResponse({"error": error.message}, status_code=error.http_status)
    if isinstance(result, Waiting):
        return JSONResponse({"state": "waiting", "position": result.position},
                            headers={"Cache-Control": "no-store"})
    return _claimed(request, hub, result,
                    lambda url: JSONResponse({"state": "ready", "url": url}))
