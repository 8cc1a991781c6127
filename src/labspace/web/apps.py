"""The instant apps' API under /hub/api/apps: define, list, show (with the pool's status),
change, drain, refresh, delete. Admins manage every app; instructors add apps and manage
those they added."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from labspace.apps.model import AppDefinition
from labspace.apps.store import AppRecord
from labspace.errors import InvalidInput, PermissionDenied
from labspace.hub import Hub
from labspace.web.deps import Caller, HubDep
from labspace.web.recorder import AuditDep
from labspace.web.workshops import InstructorDep

router = APIRouter(prefix="/hub/api/apps", tags=["apps"])


class AppPublic(BaseModel):
    name: str
    definition: AppDefinition
    url: str = Field(description="The link to give out: each visit claims a fresh container.")
    created_by: str
    created_at: datetime
    pool: dict[str, Any] = Field(description="ready, starting, claimed, queued, culled, "
                                 "claims, claim_latency_seconds (a histogram), draining.")


async def _public(hub: Hub, record: AppRecord) -> AppPublic:
    status = await hub.apps.status(record.name)
    return AppPublic(name=record.name, definition=record.definition,
                     url=f"{hub.settings.url}/apps/{record.name}", created_by=record.created_by,
                     created_at=record.created_at, pool=status.as_dict())


async def managed_app(hub: Hub, caller: Caller, name: str) -> AppRecord:
    record = await hub.apps.get(name)
    if not (caller.is_admin or record.created_by == caller.name):
        raise PermissionDenied(f"app {name!r} is managed by {record.created_by} and the "
                               "administrators")
    return record


@router.get("", response_model=list[AppPublic])
async def list_apps(caller: InstructorDep, hub: HubDep) -> list[AppPublic]:
    return [await _public(hub, record) for record in await hub.apps.list()]


@router.post("", response_model=AppPublic, status_code=201)
async def add_app(body: AppDefinition, caller: InstructorDep, hub: HubDep,
                  audit: AuditDep) -> AppPublic:
    record = await hub.apps.add(body, by=caller.name)
    await audit("app.add", actor=caller.name, target=body.name, template=body.template)
    return await _public(hub, record)


@router.get("/{name}", response_model=AppPublic)
async def show_app(name: str, caller: InstructorDep, hub: HubDep) -> AppPublic:
    return await _public(hub, await hub.apps.get(name))


@router.put("/{name}", response_model=AppPublic)
async def change_app(name: str, body: AppDefinition, caller: InstructorDep, hub: HubDep,
                     audit: AuditDep) -> AppPublic:
    if body.name != name:
        raise InvalidInput("an app's name cannot change: add a new app instead")
    await managed_app(hub, caller, name)
    record = await hub.apps.update(body)
    await audit("app.change", actor=caller.name, target=name)
    return await _public(hub, record)


async def _act(name: str, caller: Caller, hub: Hub, audit: AuditDep, action: str,
               do: Callable[[str], Awaitable[AppRecord]]) -> AppPublic:
    await managed_app(hub, caller, name)
    record = await do(name)
    await audit(f"app.{action}", actor=caller.name, target=name)
    return await _public(hub, record)


@router.post("/{name}/drain", response_model=AppPublic)
async def drain_app(name: str, caller: InstructorDep, hub: HubDep,
                    audit: AuditDep) -> AppPublic:
    """Stop handing out and remove the spares; claims run on until they end."""
    return await _act(name, caller, hub, audit, "drain", hub.apps.drain)


@router.post("/{name}/refresh", response_model=AppPublic)
async def refresh_app(name: str, caller: InstructorDep, hub: HubDep,
                      audit: AuditDep) -> AppPublic:
    """Replace the spares (after an image or template change); claims are left alone."""
    return await _act(name, caller, hub, audit, "refresh", hub.apps.refresh)


@router.delete("/{name}", status_code=204)
async def delete_app(name: str, caller: InstructorDep, hub: HubDep,
                     audit: AuditDep) -> Response:
    await managed_app(hub, caller, name)
    await hub.apps.delete(name)
    await audit("app.delete", actor=caller.name, target=name)
    return Response(status_code=204)
