"""SSH keys and connection facts, in the API (/hub/api/keys, .../ssh) and a page (/hub/keys).

Keys are the caller's own: nobody adds, sees or removes another user's keys, except that
admins list everyone's fingerprints (``?all=true``) to audit who can log in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from labspace.errors import LabspaceError, PermissionDenied
from labspace.ssh.files import SSH_PORT
from labspace.state.models import MAX_ID
from labspace.web.deps import CallerDep, HubDep, visible_workspace
from labspace.web.pages import render_page
from labspace.web.recorder import AuditDep
from labspace.web.schemas import KeyCreate, KeyPublic, SshFacts

router = APIRouter()


@router.get("/hub/api/keys", response_model=list[KeyPublic], tags=["ssh"])
async def list_keys(
    caller: CallerDep, hub: HubDep,
    all: bool = Query(False, description="Admins: everyone's keys"),
) -> list[KeyPublic]:
    if all and not caller.is_admin:
        raise PermissionDenied("only administrators can list everyone's keys")
    return [KeyPublic.of(k) for k in await hub.ssh_keys.list(None if all else caller.name)]


@router.post("/hub/api/keys", response_model=KeyPublic, status_code=201, tags=["ssh"])
async def add_key(body: KeyCreate, caller: CallerDep, hub: HubDep,
                  audit: AuditDep) -> KeyPublic:
    key = await hub.ssh_keys.add(caller.user, body.public_key, body.name)
    await audit("sshkey.add", actor=caller.name, target=caller.name,
                fingerprint=key.fingerprint)
    return KeyPublic.of(key)


@router.delete("/hub/api/keys/{key_id:int}", status_code=204, tags=["ssh"])
async def remove_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_ID)], caller: CallerDep, hub: HubDep,
    audit: AuditDep,
) -> Response:
    """The key stops working at once, in running workspaces too."""
    await hub.ssh_keys.remove(caller.user, key_id)
    await audit("sshkey.remove", actor=caller.name, target=caller.name, key=key_id)
    return Response(status_code=204)


@router.get("/hub/api/workspaces/{owner}/{name}/ssh", response_model=SshFacts, tags=["ssh"])
async def ssh_facts(owner: str, name: str, caller: CallerDep, hub: HubDep) -> SshFacts:
    record = await visible_workspace(hub, caller, owner, name)
    host_key = await hub.ssh_keys.files.ensure_host_key(record.id, record.uid)
    return SshFacts(user=record.owner, host_key=host_key, port=SSH_PORT,
                    tunnel_path=f"/tunnel/{record.owner}/{record.name}/{SSH_PORT}")


# -- the page --------------------------------------------------------------------------------


@router.get("/hub/keys", include_in_schema=False)
async def keys_page(request: Request, caller: CallerDep, hub: HubDep,
                    error: str = "", added: str = "") -> Response:
    return render_page(request, "keys.html", caller, 400 if error else 200,
                       error=error[:300], added=added[:100],
                       keys=await hub.ssh_keys.list(caller.name))


@router.post("/hub/keys", include_in_schema=False)
async def keys_page_add(
    request: Request, caller: CallerDep, hub: HubDep, audit: AuditDep,
    public_key: Annotated[str, Form(max_length=16384)],
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        key = await hub.ssh_keys.add(caller.user, public_key, name)
    except LabspaceError as error:
        return await keys_page(request, caller, hub, error=error.message)
    await audit("sshkey.add", actor=caller.name, target=caller.name,
                fingerprint=key.fingerprint)
    return RedirectResponse(f"/hub/keys?added={key.fingerprint}", status_code=303)


@router.post("/hub/keys/{key_id:int}/delete", include_in_schema=False)
async def keys_page_remove(
    key_id: Annotated[int, Path(ge=1, le=MAX_ID)], caller: CallerDep, hub: HubDep,
    audit: AuditDep,
) -> Response:
    await hub.ssh_keys.remove(caller.user, key_id)
    await audit("sshkey.remove", actor=caller.name, target=caller.name, key=key_id)
    return RedirectResponse("/hub/keys", status_code=303)
