"""Log in and out: the session cookie is issued here and checked by the proxy and the hub."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from labspace.errors import NotAuthenticated, TooManyAttempts
from labspace.identity.authenticator import login, normalise
from labspace.identity.tokens import SESSION_COOKIE, issue_token, revoke_token
from labspace.web.deps import Caller, HubDep, optional_caller, user_caller

router = APIRouter(prefix="/hub")


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a fresh login to another site."""
    if not target:
        return "/hub/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/hub/"
    return target


@router.get("/login", include_in_schema=False)
async def login_page(
    request: Request, caller: Annotated[Caller | None, Depends(optional_caller)],
    next: str | None = None,
) -> Response:
    if caller is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": safe_next(next), "error": None, "caller": None}
    )


@router.post("/login", include_in_schema=False)
async def login_submit(
    request: Request,
    hub: HubDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form()] = "/hub/",
) -> Response:
    key = (normalise(username), request.client.host if request.client else "")
    try:
        hub.login_throttle.check(*key)
        user = await login(hub.authenticator, hub.users, username, password)
    except (NotAuthenticated, TooManyAttempts) as error:
        if isinstance(error, NotAuthenticated):
            hub.login_throttle.failed(*key)
        headers = ({"Retry-After": str(error.retry_after)}
                   if isinstance(error, TooManyAttempts) else None)
        return request.app.state.templates.TemplateResponse(
            request, "login.html",
            {"next": safe_next(next), "error": error.message, "caller": None,
             "username": username},
            status_code=error.http_status, headers=headers,
        )
    hub.login_throttle.succeeded(*key)
    async with hub.db.session() as session:
        token = await issue_token(session, user, kind="session",
                                  max_age=hub.settings.session_max_age)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=hub.settings.session_max_age, path="/",
        httponly=True, samesite="lax", secure=hub.settings.secure_cookies,
    )
    return response


@router.post("/logout", include_in_schema=False)
async def logout(hub: HubDep, caller: Annotated[Caller, Depends(user_caller)]) -> Response:
    async with hub.db.session() as session:
        await revoke_token(session, caller.credential)
    response = RedirectResponse("/hub/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
