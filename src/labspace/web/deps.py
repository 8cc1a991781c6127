"""Request dependencies: who is asking, whether they may, and CSRF protection."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeSerializer

from labspace.errors import NotAuthenticated, NotFound, PermissionDenied
from labspace.hub import Hub
from labspace.identity.credentials import SCOPED_TOKEN_KIND
from labspace.identity.tokens import digest, resolve_token
from labspace.origins import Origins
from labspace.state.models import User
from labspace.workspaces.store import WorkspaceRecord

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


@dataclass(frozen=True)
class Caller:
    user: User
    via_cookie: bool
    credential: str  # the session or token value, for CSRF binding and logout
    token_kind: str = "api"

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def is_admin(self) -> bool:
        """An admin's `labspace login` token on a laptop is scoped to their own things: a
        lost laptop must not be an administrator's key (web/clilogin.py)."""
        return self.user.is_admin and self.token_kind != SCOPED_TOKEN_KIND


def _credential(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value:
        return value.strip(), False
    return request.cookies.get(get_hub(request).settings.session_cookie), True


async def optional_caller(request: Request) -> Caller | None:
    if "caller" in request.scope:
        caller: Caller | None = request.scope["caller"]
        return caller
    value, via_cookie = _credential(request)
    caller = None
    if value:
        hub = get_hub(request)
        async with hub.db.session() as session:
            resolved = await resolve_token(session, value)
        if resolved is not None:
            caller = Caller(resolved.user, via_cookie, value, resolved.token.kind)
    request.scope["caller"] = caller
    return caller


async def require_caller(
    request: Request, caller: Annotated[Caller | None, Depends(optional_caller)]
) -> Caller:
    if caller is None:
        raise NotAuthenticated("log in first")
    return caller


def csrf_token(request: Request, caller: Caller) -> str:
    """A token bound to the caller's session: a form carries it back on every POST."""
    serializer = URLSafeSerializer(request.app.state.signing_key, salt="csrf")
    return serializer.dumps(digest(caller.credential)[:32])


def check_origin(request: Request) -> None:
    """A browser's change must come from a page of the hub's own origin. Browsers send
    ``Origin`` with every non-GET request; a workspace host or another port of this host is
    another origin, even where the cookie would be sent (same site)."""
    origins: Origins = request.app.state.origins
    expected = origins.own_origin(request.headers.get("host", ""))
    origin = request.headers.get("origin")
    if origin is None or origin.lower() != expected:
        raise PermissionDenied(
            f"refused a change from another site or page ({origin or 'no Origin header'}); "
            "use labspace's own pages, or an API token for scripts")


async def check_csrf(request: Request, caller: Caller) -> None:
    """Cookie-authenticated writes must prove they come from our own pages: the right
    ``Origin``, and a token only our pages know."""
    if request.method in SAFE_METHODS or not caller.via_cookie:
        return
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    serializer = URLSafeSerializer(request.app.state.signing_key, salt="csrf")
    try:
        bound = serializer.loads(sent or "")
    except BadSignature:
        bound = None
    if not isinstance(bound, str) or not hmac.compare_digest(
        bound, digest(caller.credential)[:32]
    ):
        raise PermissionDenied("the form expired or did not come from labspace; reload the page")


async def user_caller(
    request: Request, caller: Annotated[Caller, Depends(require_caller)]
) -> Caller:
    await check_csrf(request, caller)
    return caller


async def admin_caller(caller: Annotated[Caller, Depends(user_caller)]) -> Caller:
    if not caller.is_admin:
        raise PermissionDenied("administrators only")
    return caller


async def visible_workspace(hub: Hub, caller: Caller, owner: str, name: str) -> WorkspaceRecord:
    """The workspace if the caller owns it or is an admin; otherwise NotFound, so nobody
    learns which workspaces other people have."""
    if owner != caller.name and not caller.is_admin:
        raise NotFound(f"no workspace {owner}/{name}")
    return await hub.store.get(owner, name)


CallerDep = Annotated[Caller, Depends(user_caller)]
AdminDep = Annotated[Caller, Depends(admin_caller)]
HubDep = Annotated[Hub, Depends(get_hub)]
