"""Quotas for admins: ``GET /hub/api/quotas`` (each with its use now), ``PUT`` and
``DELETE /hub/api/quotas/{scope}/{name}``, and the page ``/hub/admin/quotas``; everyone's
own quotas at ``GET /hub/api/quotas/mine``.

What is counted and how a start is refused: labspace.policy.quotas and
labspace.workspaces.quotas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labspace.policy.quotas import QuotaLimits, Resources
from labspace.templates.model import parse_size
from labspace.web.deps import AdminDep, CallerDep, HubDep
from labspace.web.pages import render_page
from labspace.web.quotaview import use_rows
from labspace.web.recorder import AuditDep
from labspace.workspaces.quotas import MAX_GROUP_NAME, QuotaUse

router = APIRouter()

MAX_MEMORY = 2**50  # 1 PiB: more is a typo, not a lab
MAX_CPUS = 100_000
MAX_GPUS = 10_000
MAX_RUNNING = 100_000

ScopePath = Annotated[Literal["user", "group"], Path(description="user or group")]
NamePath = Annotated[str, Path(min_length=1, max_length=MAX_GROUP_NAME,
                               description="The user's or the group's name.")]


class QuotaSet(BaseModel):
    """A quota's limits, replacing the ones it had; unset (null) points have no limit."""

    model_config = ConfigDict(extra="forbid")

    cpus: float | None = Field(None, ge=0, le=MAX_CPUS, description="CPUs at once (may be "
                               "fractional).")
    memory: str | None = Field(None, max_length=20, description="Memory at once, e.g. 64g "
                               "or 512m.")
    gpus: int | None = Field(None, ge=0, le=MAX_GPUS, description="GPUs at once (a shared "
                             "GPU counts as one).")
    running: int | None = Field(None, ge=0, le=MAX_RUNNING, description="Workspaces running "
                                "(or starting) at once.")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and not 0 <= parse_size(value) <= MAX_MEMORY:
            raise ValueError("memory: at most 1 PiB (1024t)")
        return value

    @model_validator(mode="after")
    def _some_limit(self) -> QuotaSet:
        if self.cpus is None and self.memory is None and self.gpus is None and self.running is None:
            raise ValueError("set at least one of cpus, memory, gpus, running (to remove a "
                             "quota, delete it)")
        return self

    def limits(self) -> QuotaLimits:
        return QuotaLimits(cpus=self.cpus, gpus=self.gpus, running=self.running,
                           memory_bytes=None if self.memory is None else parse_size(self.memory))


class ResourcesPublic(BaseModel):
    cpus: float
    memory_bytes: int
    gpus: int
    running: int

    @classmethod
    def of(cls, use: Resources) -> ResourcesPublic:
        return cls(cpus=round(use.cpus, 3), memory_bytes=use.memory_bytes, gpus=use.gpus,
                   running=use.running)


class QuotaPublic(BaseModel):
    scope: Literal["user", "group"]
    name: str
    cpus: float | None
    memory_bytes: int | None
    gpus: int | None
    running: int | None
    in_use: ResourcesPublic = Field(description="What the user's (or the group's members') "
                                    "pending, starting, running and stopping workspaces take "
                                    "now.")
    updated_by: str
    updated_at: datetime

    @classmethod
    def of(cls, use: QuotaUse) -> QuotaPublic:
        limits = use.quota.limits
        return cls(scope=use.quota.scope, name=use.quota.name, cpus=limits.cpus,
                   memory_bytes=limits.memory_bytes, gpus=limits.gpus, running=limits.running,
                   in_use=ResourcesPublic.of(use.in_use), updated_by=use.updated_by,
                   updated_at=use.updated_at)


@router.get("/hub/api/quotas", response_model=list[QuotaPublic], tags=["quotas"])
async def list_quotas(_: AdminDep, hub: HubDep) -> list[QuotaPublic]:
    """Every quota with what is in use against it now (users first, then groups)."""
    return [QuotaPublic.of(use) for use in await hub.quotas.usage()]


@router.get("/hub/api/quotas/mine", response_model=list[QuotaPublic], tags=["quotas"])
async def my_quotas(caller: CallerDep, hub: HubDep) -> list[QuotaPublic]:
    """The quotas that bind the caller (their own, their groups'), with their use now."""
    return [QuotaPublic.of(use) for use in await hub.quotas.of_user(caller.name)]


@router.put("/hub/api/quotas/{scope}/{name}", response_model=QuotaPublic, tags=["quotas"])
async def set_quota(scope: ScopePath, name: NamePath, body: QuotaSet, caller: AdminDep,
                    hub: HubDep, audit: AuditDep) -> QuotaPublic:
    """Add or replace the quota of a user or a group; it applies from the next start
    (running workspaces are never stopped for it)."""
    use = await hub.quotas.set(scope, name, body.limits(), by=caller.name)
    await audit("quota.set", actor=caller.name, target=f"{scope}:{name}",
                **body.model_dump(exclude_none=True))
    return QuotaPublic.of(use)


@router.delete("/hub/api/quotas/{scope}/{name}", status_code=204, tags=["quotas"])
async def unset_quota(scope: ScopePath, name: NamePath, caller: AdminDep, hub: HubDep,
                      audit: AuditDep) -> Response:
    await hub.quotas.unset(scope, name)
    await audit("quota.unset", actor=caller.name, target=f"{scope}:{name}")
    return Response(status_code=204)


# -- the page ---------------------------------------------------------------------------


@router.get("/hub/admin/quotas", include_in_schema=False)
async def quotas_page(request: Request, caller: AdminDep, hub: HubDep) -> Response:
    return render_page(request, "quotas.html", caller, rows=use_rows(await hub.quotas.usage()))
