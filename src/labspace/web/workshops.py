"""The workshops' API under /hub/api/workshops: create, list, cards (sheet, PDF, CSV),
reset one attendee, extend, add an instructor, delete.

Admins manage every workshop; instructors (User.role, or instructor_groups) create
workshops and manage those they run. Cards carry passwords: only managers get them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from labspace.errors import InvalidInput, PermissionDenied
from labspace.hub import Hub
from labspace.identity.credentials import SCOPED_TOKEN_KIND
from labspace.names import UserName
from labspace.web.deps import AdminDep, Caller, CallerDep, HubDep
from labspace.web.recorder import AuditDep
from labspace.web.schemas import _Input
from labspace.workshops.expiry import parse_expiry
from labspace.workshops.service import MAX_SEATS, WorkshopInfo, require_manager
from labspace.workshops.sheet import Card, render_csv, render_html, render_pdf

router = APIRouter(prefix="/hub/api/workshops", tags=["workshops"])


class WorkshopCreate(_Input):
    name: str = Field(max_length=30, description="Short name; accounts are NAME-01, ...")
    seats: int = Field(ge=1, le=MAX_SEATS, description="How many attendee accounts.")
    expires: str = Field(max_length=40, description="2026-12-01 (the end of that day, UTC), "
                         "an ISO time, or a time from now: 8h, 3d, 2w.")
    app: str | None = Field(None, max_length=30, description="Or the instant app their "
                            "login link opens (labspace app add).")
    template: str | None = Field(None, max_length=30, description="The attendees' workspace "
                                 "(one click on the login link opens it).")


class WorkshopExtend(_Input):
    expires: str = Field(max_length=40, description="The new end (as for create).")


class InstructorAdd(_Input):
    name: UserName


class WorkshopPublic(BaseModel):
    name: str
    created_by: str
    instructors: list[str]
    template: str | None
    app: str | None = Field(None, description="The instant app their login link opens.")
    expires_at: datetime
    expired: bool = Field(description="Its accounts were disabled at its end.")
    seats: int
    created_at: datetime

    @classmethod
    def of(cls, info: WorkshopInfo) -> WorkshopPublic:
        return cls(name=info.name, created_by=info.created_by,
                   instructors=list(info.instructors), template=info.template, app=info.app,
                   expires_at=info.expires_at, expired=info.expired, seats=info.seats,
                   created_at=info.created_at)


class CardPublic(BaseModel):
    seat: int
    user: str
    password: str
    login_url: str
    expires_at: datetime

    @classmethod
    def of(cls, card: Card) -> CardPublic:
        return cls(seat=card.seat, user=card.user, password=card.password,
                   login_url=card.login_url, expires_at=card.expires_at)


async def instructor_caller(caller: CallerDep, hub: HubDep) -> Caller:
    # A `labspace login` token is scoped to its owner's own things (Caller.is_admin).
    if not (caller.is_admin or (hub.is_instructor(caller.user)
                                and caller.token_kind != SCOPED_TOKEN_KIND)):
        raise PermissionDenied("instructors and administrators only")
    return caller


InstructorDep = Annotated[Caller, Depends(instructor_caller)]


async def managed(hub: Hub, caller: Caller, name: str) -> WorkshopInfo:
    info = await hub.workshops.get(name)
    require_manager(info, caller.name, is_admin=caller.is_admin)
    return info


def site_of(hub: Hub) -> str:
    return hub.settings.url


@router.get("", response_model=list[WorkshopPublic])
async def list_workshops(caller: InstructorDep, hub: HubDep) -> list[WorkshopPublic]:
    """Every workshop for admins; the ones they run for instructors."""
    return [WorkshopPublic.of(info) for info in await hub.workshops.list()
            if info.managed_by(caller.name, is_admin=caller.is_admin)]


@router.post("", response_model=WorkshopPublic, status_code=201)
async def create_workshop(body: WorkshopCreate, caller: InstructorDep, hub: HubDep,
                          audit: AuditDep) -> WorkshopPublic:
    """Make the attendee accounts with readable passwords and login links."""
    # NotFound or InvalidInput before any account is made
    if body.template is not None and not (await hub.templates.get(body.template)).workspaces:
        raise InvalidInput(f"template {body.template!r} is for instant apps only, not for "
                           "workspaces")
    if body.app is not None:
        await hub.apps.get(body.app)  # NotFound names the app
    info = await hub.workshops.create(body.name, seats=body.seats, by=caller.name,
                                      expires_at=parse_expiry(body.expires),
                                      template=body.template, app=body.app)
    await audit("workshop.create", actor=caller.name, target=info.name, seats=info.seats,
                expires_at=info.expires_at.isoformat())
    return WorkshopPublic.of(info)


@router.get("/{name}", response_model=WorkshopPublic)
async def show_workshop(name: str, caller: InstructorDep, hub: HubDep) -> WorkshopPublic:
    return WorkshopPublic.of(await managed(hub, caller, name))


@router.get("/{name}/attendees", response_model=list[str])
async def attendees(name: str, caller: InstructorDep, hub: HubDep) -> list[str]:
    await managed(hub, caller, name)
    return await hub.workshops.members(name)


@router.get("/{name}/cards", response_model=list[CardPublic])
async def cards(name: str, caller: InstructorDep, hub: HubDep) -> list[CardPublic]:
    """The attendees' credentials (passwords and login links)."""
    await managed(hub, caller, name)
    return [CardPublic.of(card) for card in await hub.workshops.cards(name, site_of(hub))]


SHEETS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf",
          "csv": "text/csv; charset=utf-8"}


@router.get("/{name}/sheet.{kind}", response_class=Response)
async def sheet(name: str, kind: str, caller: InstructorDep, hub: HubDep,
                audit: AuditDep) -> Response:
    """The printable credential sheet (html, pdf) or the CSV of the attendees' credentials."""
    if kind not in SHEETS:
        raise InvalidInput("the sheet is sheet.html, sheet.pdf or sheet.csv")
    await managed(hub, caller, name)
    found = await hub.workshops.cards(name, site_of(hub))
    title = f"Workshop {name}"
    body: str | bytes = (render_html(found, title=title) if kind == "html" else
                         render_pdf(found, title=title) if kind == "pdf" else render_csv(found))
    await audit("workshop.sheet", actor=caller.name, target=name, format=kind)
    # Passwords inside: never cached, never guessed into something a browser would run.
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Content-Disposition": f'{"inline" if kind == "html" else "attachment"}; '
                                      f'filename="{name}-credentials.{kind}"'}
    if kind == "html":
        headers["Content-Security-Policy"] = ("default-src 'none'; img-src data:; "
                                              "style-src 'unsafe-inline'")
    return Response(body, media_type=SHEETS[kind], headers=headers)


@router.post("/{name}/attendees/{user}/reset", response_model=CardPublic)
async def reset_attendee(name: str, user: str, caller: InstructorDep, hub: HubDep,
                         audit: AuditDep) -> CardPublic:
    """A new password and login link for one attendee; their sessions end now."""
    await managed(hub, caller, name)
    await hub.reset_attendee(name, user)
    await audit("workshop.reset", actor=caller.name, target=f"{name}/{user}")
    (card,) = await hub.workshops.cards(name, site_of(hub), user=user)
    return CardPublic.of(card)


@router.post("/{name}/extend", response_model=WorkshopPublic)
async def extend(name: str, body: WorkshopExtend, caller: InstructorDep, hub: HubDep,
                 audit: AuditDep) -> WorkshopPublic:
    """Move the end; an expired workshop's accounts are enabled again."""
    await managed(hub, caller, name)
    info = await hub.extend_workshop(name, parse_expiry(body.expires))
    await audit("workshop.extend", actor=caller.name, target=name,
                expires_at=info.expires_at.isoformat())
    return WorkshopPublic.of(info)


@router.post("/{name}/instructors", response_model=WorkshopPublic)
async def add_instructor(name: str, body: InstructorAdd, caller: AdminDep, hub: HubDep,
                         audit: AuditDep) -> WorkshopPublic:
    """Admins: let another instructor manage this workshop."""
    info = await hub.workshops.add_instructor(name, body.name)
    await audit("workshop.instructor", actor=caller.name, target=name, instructor=body.name)
    return WorkshopPublic.of(info)


@router.delete("/{name}", status_code=204)
async def delete_workshop(
    name: str, caller: InstructorDep, hub: HubDep, audit: AuditDep,
    delete_homes: Annotated[bool, Query(description="Delete the attendees' homes too (else "
                                        "they are moved to <homes>/.deleted).")] = False,
    confirm: Annotated[str, Query(max_length=30, description="The workshop's name again: "
                                  "required with delete_homes.")] = "",
) -> Response:
    """Delete the attendee accounts (their workspaces, tokens, keys), then the workshop."""
    await managed(hub, caller, name)
    if delete_homes and confirm != name:
        raise InvalidInput(f"deleting the attendees' homes needs confirm={name}")
    count = await hub.delete_workshop(name, by=caller.name, delete_homes=delete_homes)
    await audit("workshop.delete", actor=caller.name, target=name,
                accounts=count, homes_deleted=delete_homes)
    return Response(status_code=204)
