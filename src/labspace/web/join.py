"""The one-click login of a workshop's attendee: /hub/join#<token>.

The page reads the token from the fragment (never sent to a server, so in no log and no
Referer) and posts it here. The post must come from this page (Origin), and counts against
the login throttle of its address like a wrong password, so a guesser gains nothing from
links either. A valid link logs the attendee in and opens the workshop's workspace (made and
started on the first visit).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from labspace.errors import Conflict, LabspaceError, PermissionDenied, TooManyAttempts
from labspace.hub import Hub
from labspace.state.models import User
from labspace.web.app import templates
from labspace.web.deps import HubDep, check_origin
from labspace.web.login import start_session
from labspace.web.recorder import client_address
from labspace.workshops.service import WorkshopInfo

router = APIRouter(prefix="/hub", include_in_schema=False)
log = logging.getLogger(__name__)

LINK_ACCOUNT = "(workshop login link)"  # what the throttle counts link failures under
INVALID = ("This login link is not valid: it was reset, or the workshop has ended.")


def _page(request: Request, status: int = 200, error: str | None = None) -> Response:
    response = templates.TemplateResponse(request, "join.html",
                                          {"caller": None, "error": error}, status_code=status)
    # Not "no-referrer": under it Chromium sends "Origin: null" with the page's own POST, and
    # the origin check refuses every real browser. Referer never carries the fragment (the
    # token) anyway; "same-origin" keeps even the path from other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/join")
async def join_page(request: Request) -> Response:
    return _page(request)


@router.post("/join")
async def join(request: Request, hub: HubDep,
               token: Annotated[str, Form(max_length=100)] = "") -> Response:
    try:
        check_origin(request)
    except PermissionDenied as error:
        return _page(request, 403, error.message)
    address = client_address(request)
    try:
        await hub.login_throttle.check(LINK_ACCOUNT, address)
    except TooManyAttempts as error:
        response = _page(request, error.http_status, error.message)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    found = await hub.workshops.account_of_link(token) if token else None
    if found is None or found[0].disabled:
        await hub.login_throttle.failed(LINK_ACCOUNT, address)
        await hub.audit.record("login.failed", actor="", target=LINK_ACCOUNT, address=address,
                               ok=False, method="workshop link")
        return _page(request, 403, INVALID)
    user, workshop = found
    await hub.audit.record("login.ok", actor=user.name, target=user.name, address=address,
                           method="workshop link")
    return await start_session(hub, user, await _landing(hub, user, workshop))


async def _landing(hub: Hub, user: User, workshop: WorkshopInfo) -> str:
    """The workshop's workspace, made and started on the first visit; else the home page.
    A failure to start is shown on the workspace's own page, never blocks the login."""
    if workshop.app is not None:
        return f"/apps/{workshop.app}"  # the pool hands them a running one, or queues them
    if workshop.template is None:
        return "/hub/"
    name = workshop.template
    try:
        with contextlib.suppress(Conflict):  # made on an earlier visit
            await hub.create_workspace(user.name, name, workshop.template)
        await hub.start_workspace(user.name, name)
    except LabspaceError as error:
        log.warning("workshop %s: %s's workspace did not start: %s", workshop.name, user.name,
                    error.message)
        return "/hub/"
    return f"/hub/workspaces/{user.name}/{name}?launch=1"
