"""A member's allowance: the union of the access rules of their groups.

A member gets the rules of those of their groups that have one; someone in none of them gets
the ``"*"`` rule; with no ``"*"`` rule either, nothing is restricted (a lab that configures
no rules keeps today's behaviour). Administrators are never restricted. Where several rules
apply, the member may use what any of them allows (templates and profiles are unioned, the
largest number of workspaces wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from labspace.errors import PermissionDenied
from labspace.policy.model import EVERYONE, AccessRule, ProfileSpec


@dataclass(frozen=True)
class Allowance:
    templates: frozenset[str] | None = None  # None: every template
    profiles: tuple[str, ...] | None = None  # None: any profile (or the template's limits)
    max_workspaces: int | None = None  # None: no limit
    why: str = ""  # the groups the rules came from, for messages

    def template_allowed(self, name: str) -> bool:
        return self.templates is None or name in self.templates

    def profile_allowed(self, name: str) -> bool:
        return self.profiles is None or name in self.profiles or (name == "" and not
                                                                   self.profiles)

    def default_profile(self) -> str:
        return self.profiles[0] if self.profiles else ""

    def check_template(self, name: str) -> None:
        if not self.template_allowed(name):
            raise PermissionDenied(f"template {name!r} is not available to you ({self.why}); "
                                   f"yours: {', '.join(sorted(self.templates or ())) or 'none'}")

    def check_profile(self, name: str) -> None:
        if not self.profile_allowed(name):
            raise PermissionDenied(f"resource profile {name or 'none'!r} is not available to "
                                   f"you ({self.why}); yours: "
                                   f"{', '.join(self.profiles or ()) or 'none'}")

    def check_count(self, have: int) -> None:
        if self.max_workspaces is not None and have >= self.max_workspaces:
            raise PermissionDenied(f"you may have at most {self.max_workspaces} workspace(s) "
                                   f"({self.why}) and have {have}: delete one first")


UNRESTRICTED = Allowance()


def allowance_for(groups: Iterable[str], rules: Mapping[str, AccessRule], *,
                  is_admin: bool = False, only_template: str | None = None) -> Allowance:
    """The allowance of someone in ``groups``. ``only_template`` narrows it further (a
    workshop's attendees use the workshop's template)."""
    if is_admin:
        return UNRESTRICTED
    names = sorted({group for group in groups if group in rules and group != EVERYONE})
    chosen = [rules[name] for name in names]
    why = "groups " + ", ".join(names) if names else ""
    if not chosen and EVERYONE in rules:
        chosen, why = [rules[EVERYONE]], "the rule for everyone"
    allowance = _union(chosen, why) if chosen else UNRESTRICTED
    if only_template is not None:
        templates = {only_template} & (allowance.templates or {only_template})
        allowance = Allowance(frozenset(templates), allowance.profiles,
                              allowance.max_workspaces, allowance.why or "your workshop")
    return allowance


def _union(rules: list[AccessRule], why: str) -> Allowance:
    templates: set[str] | None = set()
    profiles: list[str] | None = []
    most: int | None = 0
    for rule in rules:
        if templates is not None:
            templates = None if rule.templates is None else templates | set(rule.templates)
        if profiles is not None:
            profiles = None if rule.profiles is None else profiles + [
                name for name in rule.profiles if name not in profiles]
        if most is not None:
            most = None if rule.max_workspaces is None else max(most, rule.max_workspaces)
    return Allowance(None if templates is None else frozenset(templates),
                     None if profiles is None else tuple(profiles), most, why)


def allowed_profiles(profiles: Mapping[str, ProfileSpec], allowance: Allowance
                     ) -> list[tuple[str, ProfileSpec]]:
    """The profiles ``allowance`` lets one pick, its default first (as the rule lists them;
    with no rule, as the settings do)."""
    names = list(profiles) if allowance.profiles is None else list(allowance.profiles)
    return [(name, profiles[name]) for name in names if name in profiles]
