"""Single sign-on: /hub/oidc/login sends the browser to the identity provider, and
/hub/oidc/callback brings it back logged in (identity/oidc.py does the protocol).

The login in flight (state, nonce, PKCE verifier, where to go next) is a signed cookie of
the browser that started it, for ten minutes, sent only to /hub/oidc/. A callback without it
(another browser, a link someone was sent: login CSRF) finishes nothing.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadData, URLSafeTimedSerializer

from labspace.errors import NotAuthenticated, NotFound, RuntimeFailure
from labspace.hub import Hub
from labspace.identity.oidc import OidcClient, PendingLogin, sign_in
from labspace.web.deps import HubDep
from labspace.web.login import login_form, safe_next, start_session
from labspace.web.recorder import AuditDep

router = APIRouter(prefix="/hub/oidc")

PENDING_COOKIE = "labspace-oidc"
PENDING_MAX_AGE = 600
# Callback parameters read; anything else the provider adds is ignored.
CALLBACK_PARAMS = ("code", "state", "iss", "error", "error_description")


def _client(hub: Hub) -> OidcClient:
    if hub.oidc is None:
        raise NotFound("single sign-on is not configured (oidc_issuer)")
    return hub.oidc


def _signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.signing_key, salt="labspace-oidc-login")


@router.get("/login", include_in_schema=False)
async def start(request: Request, hub: HubDep, next: str | None = None) -> Response:
    client = _client(hub)
    pending = PendingLogin.new(safe_next(next))
    try:
        url = await client.authorization_url(pending)
    except RuntimeFailure as error:
        return login_form(request, hub, 503, next=pending.next, error=error.message)
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: the provider's redirect back is a cross-site top-level navigation.
    response.set_cookie(PENDING_COOKIE, _signer(request).dumps(asdict(pending)),
                        max_age=PENDING_MAX_AGE, path="/hub/oidc/", httponly=True,
                        samesite="lax", secure=hub.settings.secure_cookies)
    return response


@router.get("/callback", include_in_schema=False)
async def callback(request: Request, hub: HubDep, audit: AuditDep) -> Response:
    client = _client(hub)
    try:
        pending = PendingLogin(**_signer(request).loads(
            request.cookies.get(PENDING_COOKIE, ""), max_age=PENDING_MAX_AGE))
    except (BadData, TypeError):
        return _refused(request, hub, 403, "/hub/", "The login took too long or did not start "
                        "in this browser; please log in again.")
    params = {key: request.query_params[key] for key in CALLBACK_PARAMS
              if key in request.query_params}
    try:
        user = await sign_in(client, hub.users, pending, params)
    except (NotAuthenticated, RuntimeFailure) as error:
        await audit("login.failed", actor="", ok=False, method="oidc",
                    reason=error.message[:200])
        return _refused(request, hub, error.http_status, pending.next, error.message)
    await audit("login.ok", actor=user.name, target=user.name, method="oidc")
    response = await start_session(hub, user, pending.next)
    response.delete_cookie(PENDING_COOKIE, path="/hub/oidc/")
    return response


def _refused(request: Request, hub: Hub, status: int, next_path: str, message: str
             ) -> Response:
    # The pending login is spent either way: a second try of the same callback is refused.
    response = login_form(request, hub, status, next=next_path, error=message)
    response.delete_cookie(PENDING_COOKIE, path="/hub/oidc/")
    return response
