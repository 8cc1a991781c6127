"""The settings' shapes: a resource profile and an access rule (``[profiles.NAME]`` and
``[access.GROUP]`` tables of labspace.toml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from labspace.templates.idle import IdleCpuBelow, IdleStopAfter
from labspace.templates.model import LimitSpec, TemplateSpec

EVERYONE = "*"  # the access rule of those in none of the listed groups


class ProfileSpec(BaseModel):
    """A named set of limits a workspace starts with, instead of its template's (e.g.
    interns 4 CPUs/16 GB, PhD students 16 CPUs/64 GB)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: str = Field("", max_length=80, description="Shown in the start form.")
    description: str = Field("", max_length=300)
    limits: LimitSpec = LimitSpec()
    # Unset: the template's; set, the profile's wins ("never" turns the template's off).
    idle_stop_after: IdleStopAfter = None
    idle_cpu_below: IdleCpuBelow = None


class AccessRule(BaseModel):
    """What the members of one group may use. Unset (None): no restriction on that point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    templates: list[str] | None = Field(None, description="Templates they may start.")
    profiles: list[str] | None = Field(
        None, description="Profiles they may pick; the first is the default.")
    max_workspaces: int | None = Field(None, ge=0, le=10_000,
                                       description="How many workspaces they may have.")


def with_profile(template: TemplateSpec, profile: ProfileSpec | None) -> TemplateSpec:
    """The template as this profile starts it: the profile's limits replace the template's,
    field by field (a profile that sets only memory keeps the template's CPUs), and so do its
    idle settings where it has them."""
    if profile is None:
        return template
    mine = profile.limits.model_dump(exclude_none=True)
    limits = template.limits.model_copy(update=mine)
    idle = profile.model_dump(include={"idle_stop_after", "idle_cpu_below"}, exclude_none=True)
    return template.model_copy(update={"limits": limits, **idle})
