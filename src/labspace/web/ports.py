"""A workspace's ports: listed and shared in the API, from the workspace page, and opened.

The owner (or an admin) lists the ports the workspace listens on and sets each one's share
level; labspace.sharing does the work. ``/hub/shared/<owner>/<ws>/<port>`` is where the proxy
sends a browser that has no cookie for a shared port's host yet: the hub logs it in if need
be, checks the level admits it, and sends it back with a ticket, as for a workspace's host.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Request, Response
from fastapi.responses import RedirectResponse

from labspace.errors import LabspaceError, NotFound, PermissionDenied
from labspace.origins import Origins
from labspace.sharing.levels import ShareLevel, admits
from labspace.web.deps import Caller, CallerDep, HubDep, optional_caller, visible_workspace
from labspace.web.login import safe_next
from labspace.web.open import ticket_redirect
from labspace.web.recorder import AuditDep, Recorder
from labspace.web.schemas import PortPublic, PortsPublic, ShareLevelName, ShareUpdate

router = APIRouter()
MAX_NEXT = 2048
PortNumber = Annotated[int, Path(ge=1, le=65535, description="A TCP port of the workspace.")]


@router.get("/hub/api/workspaces/{owner}/{name}/ports", response_model=PortsPublic,
            tags=["ports"])
async def list_ports(owner: str, name: str, caller: CallerDep, hub: HubDep) -> PortsPublic:
    """The ports the workspace listens on (detected while it runs) and those shared."""
    record = await visible_workspace(hub, caller, owner, name)
    return PortsPublic.of(await hub.sharing.ports(record))


@router.put("/hub/api/workspaces/{owner}/{name}/ports/{port}", response_model=PortPublic,
            tags=["ports"])
async def share_port(owner: str, name: str, port: PortNumber, body: ShareUpdate,
                     caller: CallerDep, hub: HubDep, audit: AuditDep) -> PortPublic:
    """Share a port at a level; lowering it closes the connections it no longer admits."""
    record = await visible_workspace(hub, caller, owner, name)
    shared = await hub.sharing.share(record, port, ShareLevel(body.level))
    await _shared(audit, caller, owner, name, port, body.level)
    return PortPublic.of(shared)


@router.delete("/hub/api/workspaces/{owner}/{name}/ports/{port}", status_code=204,
               tags=["ports"])
async def unshare_port(owner: str, name: str, port: PortNumber, caller: CallerDep,
                       hub: HubDep, audit: AuditDep) -> Response:
    """Make the port private again (its owner only), at once."""
    record = await visible_workspace(hub, caller, owner, name)
    await hub.sharing.share(record, port, ShareLevel.PRIVATE)
    await _shared(audit, caller, owner, name, port, ShareLevel.PRIVATE.value)
    return Response(status_code=204)


@router.post("/hub/workspaces/{owner}/{name}/ports", include_in_schema=False)
async def share_port_form(
    owner: str, name: str, caller: CallerDep, hub: HubDep, audit: AuditDep,
    port: Annotated[int, Form(ge=1, le=65535)], level: Annotated[ShareLevelName, Form()],
) -> Response:
    record = await visible_workspace(hub, caller, owner, name)
    page = f"/hub/workspaces/{quote(owner)}/{quote(name)}"
    try:
        await hub.sharing.share(record, port, ShareLevel(level))
    except LabspaceError as error:
        return RedirectResponse(f"{page}?port_error={quote(error.message[:300])}#ports",
                                status_code=303)
    await _shared(audit, caller, owner, name, port, level)
    return RedirectResponse(f"{page}#ports", status_code=303)


async def _shared(audit: Recorder, caller: Caller, owner: str, name: str, port: int,
                  level: str) -> None:
    await audit("share.set", actor=caller.name, target=f"{owner}/{name}", port=port,
                level=level)


@router.get("/hub/shared/{owner}/{name}/{port}", include_in_schema=False)
async def open_shared_port(
    request: Request, owner: str, name: str, port: PortNumber, hub: HubDep,
    caller: Annotated[Caller | None, Depends(optional_caller)], next: str = "/",
) -> Response:
    origins: Origins = request.app.state.origins
    try:
        host = origins.share_host(owner, name, port)
    except ValueError:
        raise NotFound("there is nothing at this address") from None
    if caller is None:
        here = f"/hub/shared/{quote(owner)}/{quote(name)}/{port}?next={quote(next, safe='')}"
        return RedirectResponse("/hub/login?next=" + quote(here, safe="/"), status_code=303)
    try:
        record = await hub.store.get(owner, name)
        level = (await hub.sharing.store.levels(record.id)).get(port, ShareLevel.PRIVATE)
    except NotFound:
        level = ShareLevel.PRIVATE  # the same answer as for a private port: no enumeration
    if not admits(level, caller.name, owner):
        raise PermissionDenied("the owner of this port has not shared it with you")
    # A path on the port's host and nothing else, of a length a URL can carry.
    path = next if safe_next(next) == next and len(next) <= MAX_NEXT else "/"
    return ticket_redirect(request, caller, host, origins.share_origin(owner, name, port), path)
