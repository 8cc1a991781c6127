"""``labspace login`` for the CLI on a laptop: the hub's side of the device flow
(identity/devicelogin.py). Two API calls for the CLI, one page for the browser:

* ``POST /hub/api/cli-logins`` (no credentials): a device code, a user code, the page's URL;
* ``/hub/cli-login?code=...``: the logged-in user sees which computer asks and approves it;
* ``POST /hub/api/cli-logins/token``: the CLI polls with its device code and, once approved,
  gets a token of kind "cli" (scoped: no admin powers; expires after cli_token_max_age).

The poll answers in RFC 8628's shape (``{"error": "authorization_pending"}``...), which the CLI
reads itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from labspace.errors import InvalidInput, LabspaceError
from labspace.identity.credentials import SCOPED_TOKEN_KIND
from labspace.identity.devicelogin import LIFETIME_S, POLL_INTERVAL_S
from labspace.identity.tokens import issue_token
from labspace.state.models import User
from labspace.web.deps import Caller, CallerDep, HubDep
from labspace.web.pages import render_page
from labspace.web.recorder import AuditDep

router = APIRouter()


class CliLoginBegin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client: str = Field("", max_length=100, description="The computer's name, shown to the "
                        "user who approves.")


class CliLoginStarted(BaseModel):
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class CliLoginPoll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_code: str = Field(max_length=100)


@router.post("/hub/api/cli-logins", response_model=CliLoginStarted, status_code=201,
             tags=["cli login"])
async def begin(body: CliLoginBegin, request: Request, hub: HubDep) -> CliLoginStarted:
    address = request.client.host if request.client else ""
    pending = hub.device_logins.begin(_printable(body.client) or "a computer", address)
    page = f"{hub.settings.url.rstrip('/')}/hub/cli-login"
    return CliLoginStarted(device_code=pending.device_code, user_code=pending.user_code,
                           verification_uri=page,
                           verification_uri_complete=f"{page}?code={pending.user_code}",
                           expires_in=int(LIFETIME_S), interval=POLL_INTERVAL_S)


@router.post("/hub/api/cli-logins/token", tags=["cli login"])
async def poll(body: CliLoginPoll, hub: HubDep, audit: AuditDep) -> Response:
    try:
        pending = hub.device_logins.poll(body.device_code)
    except InvalidInput:
        return _oauth_error("expired_token", "the login expired; run `labspace login` again")
    if pending.denied:
        return _oauth_error("access_denied", "the login was refused in the browser")
    if pending.approved_by is None:
        return _oauth_error("authorization_pending", "waiting for approval in the browser")
    async with hub.db.session() as session:
        user = await session.scalar(select(User).where(User.id == pending.approved_by))
        if user is None or user.disabled:
            return _oauth_error("access_denied", "the account is disabled")
        token = await issue_token(session, user, kind=SCOPED_TOKEN_KIND,
                                  note=f"labspace CLI on {pending.client}",
                                  max_age=hub.settings.cli_token_max_age)
    await audit("login.ok", actor=user.name, target=user.name, method="cli",
                client=pending.client)
    return JSONResponse({"token": token, "user": user.name,
                         "expires_in": hub.settings.cli_token_max_age})


def _oauth_error(code: str, description: str) -> Response:
    return JSONResponse({"error": code, "error_description": description}, status_code=400)


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable()).strip()


# -- the page ---------------------------------------------------------------------------------


@router.get("/hub/cli-login", include_in_schema=False)
async def approve_page(request: Request, caller: CallerDep, code: str = "") -> Response:
    return _page(request, caller, code=code[:20])


@router.post("/hub/cli-login", include_in_schema=False)
async def approve(
    request: Request, caller: CallerDep, hub: HubDep,
    code: Annotated[str, Form(max_length=20)],
    decision: Annotated[str, Form(pattern="^(continue|approve|deny)$")],
) -> Response:
    """"continue" shows which computer asks; "approve" or "deny" settles it."""
    try:
        if decision == "continue":
            pending = hub.device_logins.find(caller.user.id, code)
            return _page(request, caller, code=pending.user_code, client=pending.client)
        pending = hub.device_logins.decide(caller.user.id, code, decision == "approve")
    except LabspaceError as error:
        return _page(request, caller, code=code, error=error.message,
                     status=error.http_status)
    return _page(request, caller, done="approved" if decision == "approve" else "denied",
                 client=pending.client)


def _page(request: Request, caller: Caller, *, code: str = "", client: str = "",
          error: str = "", done: str = "", status: int = 200) -> Response:
    return render_page(request, "cli-login.html", caller, status, code=code, client=client,
                       error=error, done=done)
