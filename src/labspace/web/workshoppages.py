"""The instructors' pages: /hub/workshops (theirs, and a form to make one) and
/hub/workshops/<name> (attendees and their workspaces, the sheet, reset, extend, delete).

The same operations as the API (web/workshops.py), which checks who may do what; these pages
add forms (CSRF-checked by InstructorDep's user_caller) and answers for people.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from labspace.errors import InvalidInput, LabspaceError
from labspace.web.deps import Caller, HubDep
from labspace.web.pages import render_page
from labspace.web.recorder import AuditDep
from labspace.web.workshops import (
    InstructorDep,
    WorkshopCreate,
    WorkshopExtend,
    managed,
)
from labspace.web.workshops import create_workshop as api_create
from labspace.web.workshops import delete_workshop as api_delete
from labspace.web.workshops import extend as api_extend
from labspace.web.workshops import reset_attendee as api_reset

router = APIRouter(prefix="/hub/workshops", include_in_schema=False)


def _page_of(name: str) -> str:
    return f"/hub/workshops/{quote(name)}"


async def _list(request: Request, caller: Caller, hub: HubDep, *, status: int = 200,
                error: str | None = None, form: dict[str, Any] | None = None) -> Response:
    mine = [info for info in await hub.workshops.list()
            if info.managed_by(caller.name, is_admin=caller.is_admin)]
    templates = [spec for spec in await hub.templates.list() if spec.workspaces]
    apps = [record.definition for record in await hub.apps.list()]
    return render_page(request, "workshops.html", caller, status, workshops=mine,
                       templates=templates, apps=apps, error=error, form=form or {})


@router.get("")
async def workshops_page(request: Request, caller: InstructorDep, hub: HubDep) -> Response:
    return await _list(request, caller, hub)


@router.post("")
async def workshops_create(
    request: Request, caller: InstructorDep, hub: HubDep, audit: AuditDep,
    name: Annotated[str, Form(max_length=30)] = "",
    seats: Annotated[int, Form(ge=1, le=1000)] = 20,
    expires: Annotated[str, Form(max_length=40)] = "",
    opens: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """``opens``: "" (attendees choose), "template:<name>" or "app:<name>"."""
    form = {"name": name, "seats": seats, "expires": expires, "opens": opens}
    kind, _, what = opens.partition(":")
    try:
        if opens and (kind not in ("template", "app") or not what):
            raise InvalidInput("choose a workspace template or an instant app from the list")
        body = WorkshopCreate(name=name.strip(), seats=seats, expires=expires,
                              template=what if kind == "template" else None,
                              app=what if kind == "app" else None)
        await api_create(body, caller, hub, audit)
    except LabspaceError as error:
        return await _list(request, caller, hub, status=error.http_status, error=error.message,
                           form=form)
    return RedirectResponse(_page_of(name.strip()), status_code=303)


async def _detail(request: Request, caller: Caller, hub: HubDep, name: str, *,
                  status: int = 200, error: str | None = None,
                  reset: Any = None) -> Response:
    info = await managed(hub, caller, name)
    members = await hub.workshops.members(name)
    wanted = set(members)
    spaces: dict[str, list[Any]] = {}
    for record in await hub.store.list():
        if record.owner in wanted:
            spaces.setdefault(record.owner, []).append(record)
    users = {user.name: user for user in await hub.users.list() if user.name in wanted}
    return render_page(request, "workshop.html", caller, status, info=info,
                       rows=[(users[m], spaces.get(m, [])) for m in members if m in users],
                       error=error, reset=reset, page=_page_of(name))


@router.get("/{name}")
async def workshop_page(request: Request, name: str, caller: InstructorDep,
                        hub: HubDep) -> Response:
    return await _detail(request, caller, hub, name)


@router.post("/{name}/reset/{user}")
async def workshop_reset(request: Request, name: str, user: str, caller: InstructorDep,
                         hub: HubDep, audit: AuditDep) -> Response:
    card = await api_reset(name, user, caller, hub, audit)
    return await _detail(request, caller, hub, name, reset=card)


@router.post("/{name}/extend")
async def workshop_extend(request: Request, name: str, caller: InstructorDep, hub: HubDep,
                          audit: AuditDep,
                          expires: Annotated[str, Form(max_length=40)] = "") -> Response:
    try:
        await api_extend(name, WorkshopExtend(expires=expires), caller, hub, audit)
    except InvalidInput as error:
        return await _detail(request, caller, hub, name, status=400, error=error.message)
    return RedirectResponse(_page_of(name), status_code=303)


@router.post("/{name}/delete")
async def workshop_delete(
    request: Request, name: str, caller: InstructorDep, hub: HubDep, audit: AuditDep,
    confirm: Annotated[str, Form(max_length=30)] = "",
    delete_homes: Annotated[bool, Form()] = False,
) -> Response:
    """Deleting asks for the workshop's name, homes or not: it ends every attendee's work."""
    await managed(hub, caller, name)
    if confirm != name:
        return await _detail(request, caller, hub, name, status=400,
                             error=f"Type the workshop's name ({name}) to delete it.")
    await api_delete(name, caller, hub, audit, delete_homes=delete_homes, confirm=confirm)
    return RedirectResponse("/hub/workshops", status_code=303)
