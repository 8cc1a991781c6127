"""Log in and out: the session cookie is issued here and checked by the proxy and the hub.

The login form itself is protected against cross-site submission (login CSRF: another site
logging a visitor into the attacker's account) with a double-submit nonce: the form carries a
random value that must match a SameSite=Strict cookie set with the form.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from labspace.errors import NotAuthenticated, PermissionDenied, RuntimeFailure, TooManyAttempts
from labspace.hub import Hub
from labspace.identity.authenticator import login, normalise
from labspace.identity.tokens import digest, issue_token, revoke_token
from labspace.state.models import User
from labspace.web.deps import Caller, HubDep, check_origin, optional_caller, user_caller
from labspace.web.recorder import AuditDep

router = APIRouter(prefix="/hub")

LOGIN_COOKIE = "labspace-login"
LOGIN_FIELD = "_login"


def login_form(request: Request, hub: Hub, status: int = 200, **context: Any) -> Response:
    """Render the login form with a fresh nonce, set in the form and in a cookie."""
    nonce = secrets.token_urlsafe(24)
    response: Response = request.app.state.templates.TemplateResponse(
        request, "login.html",
        {"caller": None, "error": None, "username": "", "next": "/hub/", **context,
         "login_nonce": nonce, "single_sign_on": hub.oidc.config.name if hub.oidc else None},
        status_code=status,
    )
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path="/hub/login", httponly=True,
                        samesite="strict", secure=hub.settings.secure_cookies)
    return response


def _from_own_page(request: Request) -> bool:
    try:
        check_origin(request)
    except PermissionDenied:
        return False
    return True


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a fresh login to another site."""
    if not target:
        return "/hub/"
    parts = urlsplit(target)
    # A browser reads "/\\evil.example" and "/<tab>/evil.example" as "//evil.example": no
    # backslash and no control character at all.
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)):
        return "/hub/"
    return target


@router.get("/login", include_in_schema=False)
async def login_page(
    request: Request, hub: HubDep,
    caller: Annotated[Caller | None, Depends(optional_caller)], next: str | None = None,
) -> Response:
    if caller is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return login_form(request, hub, next=safe_next(next))


@router.post("/login", include_in_schema=False)
async def login_submit(
    request: Request,
    hub: HubDep,
    audit: AuditDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form()] = "/hub/",
    login_nonce: Annotated[str, Form(alias=LOGIN_FIELD)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if (not expected or not hmac.compare_digest(expected.encode(), login_nonce.encode())
            or not _from_own_page(request)):
        return login_form(
            request, hub, 403, next=safe_next(next), username=username,
            error="The login form expired or did not come from this site; please try again.",
        )
    # The address the proxy saw (web/forwarded.py): a client cannot choose the one it is
    # counted under. The rules (per pair, per account, per address): identity/throttle.py;
    # the failures are kept in the database (identity/failedlogins.py).
    key = (normalise(username), request.client.host if request.client else "")
    try:
        await hub.login_throttle.check(*key)
        user = await login(hub.authenticator, hub.users, username, password)
    except (NotAuthenticated, TooManyAttempts, RuntimeFailure) as error:
        if isinstance(error, NotAuthenticated):
            await hub.login_throttle.failed(*key)
        # The name as typed (never the password): a sprayed or mistyped name is the point.
        await audit("login.failed", actor="", target=username, ok=False, method="password",
                    reason=type(error).__name__)
        response = login_form(request, hub, error.http_status, next=safe_next(next),
                               username=username, error=error.message)
        if isinstance(error, TooManyAttempts):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    await hub.login_throttle.succeeded(*key)
    await audit("login.ok", actor=user.name, target=user.name, method="password")
    response = await start_session(hub, user, safe_next(next))
    response.delete_cookie(LOGIN_COOKIE, path="/hub/login")
    return response


async def start_session(hub: Hub, user: User, next_path: str) -> Response:
    """The session cookie of a fresh login (password or single sign-on), and on to next."""
    async with hub.db.session() as session:
        token = await issue_token(session, user, kind="session",
                                  max_age=hub.settings.session_max_age)
    response = RedirectResponse(next_path, status_code=303)
    # Host-only (no Domain), so never sent to a workspace's host; __Host- named over HTTPS.
    response.set_cookie(
        hub.settings.session_cookie, token, max_age=hub.settings.session_max_age, path="/",
        httponly=True, samesite="lax", secure=hub.settings.secure_cookies,
    )
    return response


@router.post("/logout", include_in_schema=False)
async def logout(hub: HubDep, caller: Annotated[Caller, Depends(user_caller)],
                 audit: AuditDep) -> Response:
    async with hub.db.session() as session:
        await revoke_token(session, caller.credential)
    await hub.proxy.revoked(digests=[digest(caller.credential)])
    await audit("logout", actor=caller.name, target=caller.name)
    response = RedirectResponse("/hub/login", status_code=303)
    response.delete_cookie(hub.settings.session_cookie, path="/",
                           secure=hub.settings.secure_cookies)
    return response
