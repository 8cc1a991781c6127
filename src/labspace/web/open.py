"""Opening a workspace in a browser when each workspace has its own host (``apps_domain``).

The proxy sends a browser's ``GET /user/<owner>/<ws>/...`` on the hub's address here. The hub
knows the browser's session, so it checks who may open the workspace and hands out a ticket
for the workspace's host in a redirect; the proxy on that host exchanges it for a cookie of
that host alone (labspace.identity.hostauth). The hub's own cookie never leaves the hub's host.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from labspace.errors import NotFound
from labspace.identity.hostauth import HostSigner
from labspace.identity.tokens import digest
from labspace.origins import AUTH_PATH, Origins
from labspace.web.deps import Caller, HubDep, optional_caller, visible_workspace
from labspace.workspaces.states import State

router = APIRouter(include_in_schema=False)



def _raw_path(request: Request) -> str:
    """The path as sent (percent-encoding intact) with its query."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    path = raw.decode("latin-1")
    return f"{path}?{query.decode('latin-1')}" if query else path


@router.get("/user/{owner}/{name}")
@router.get("/user/{owner}/{name}/{tail:path}")
async def open_workspace(
    request: Request, owner: str, name: str, hub: HubDep,
    caller: Annotated[Caller | None, Depends(optional_caller)],
) -> Response:
    if not hub.settings.apps_domain:
        raise NotFound("there is nothing at this address")  # path mode: the proxy serves it
    path = _raw_path(request)
    if caller is None:
        return RedirectResponse("/hub/login?next=" + quote(path, safe="/"), status_code=303)
    record = await visible_workspace(hub, caller, owner, name)
    if record.state != State.RUNNING:
        return RedirectResponse(f"/hub/workspaces/{quote(owner)}/{quote(name)}",
                                status_code=303)
    origins: Origins = request.app.state.origins
    return ticket_redirect(request, caller, origins.workspace_host(owner, name),
                           origins.workspace_origin(owner, name), path)


def ticket_redirect(request: Request, caller: Caller, host: str, origin: str,
                    path: str) -> Response:
    """Send the browser to ``host``'s login with a ticket for the caller's session, and on
    to ``path`` there."""
    signer: HostSigner = request.app.state.host_signer
    ticket = signer.ticket(host, digest(caller.credential))
    query = urlencode({"ticket": ticket, "next": path})
    response = RedirectResponse(f"{origin}{AUTH_PATH}?{query}", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
