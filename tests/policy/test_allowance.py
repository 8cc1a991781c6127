"""The allowance a member's groups give: union of their rules, "*" for the others, none for
admins; a workshop narrows it to its template."""

from __future__ import annotations

import pytest

from labspace.errors import PermissionDenied
from labspace.policy import AccessRule, ProfileSpec, allowance_for, with_profile
from labspace.templates import builtin_templates

RULES = {
    "interns": AccessRule(templates=["jupyterlab"], profiles=["small"], max_workspaces=1),
    "phd": AccessRule(profiles=["small", "big"], max_workspaces=5),
    "*": AccessRule(templates=["jupyterlab"], profiles=[], max_workspaces=2),
}


def test_no_rules_restrict_nothing() -> None:
    allowance = allowance_for(["anything"], {})
    assert allowance.template_allowed("any") and allowance.profile_allowed("big")
    allowance.check_count(10_000)


def test_a_members_groups_are_unioned() -> None:
    both = allowance_for(["interns", "phd", "unlisted"], RULES)
    assert both.templates is None  # phd names no templates: every one
    assert both.profiles == ("small", "big") and both.default_profile() == "small"
    assert both.max_workspaces == 5
    intern = allowance_for(["interns"], RULES)
    assert intern.templates == {"jupyterlab"} and intern.max_workspaces == 1
    with pytest.raises(PermissionDenied, match="at most 1 workspace"):
        intern.check_count(1)
    with pytest.raises(PermissionDenied, match=r"profile .big. is not available.*interns"):
        intern.check_profile("big")
    with pytest.raises(PermissionDenied, match="template 'rstudio'"):
        intern.check_template("rstudio")


def test_those_in_no_listed_group_get_the_rule_for_everyone() -> None:
    other = allowance_for(["students"], RULES)
    assert other.templates == {"jupyterlab"} and other.max_workspaces == 2
    assert other.profile_allowed("") and not other.profile_allowed("small")
    assert allowance_for([], {k: v for k, v in RULES.items() if k != "*"}).templates is None


def test_admins_and_workshops() -> None:
    assert allowance_for(["interns"], RULES, is_admin=True).max_workspaces is None
    attendee = allowance_for(["genomics"], {}, only_template="jupyterlab")
    assert attendee.templates == {"jupyterlab"}
    # A workshop's template the group rules do not allow is not allowed either.
    assert allowance_for(["interns"], RULES, only_template="rstudio").templates == frozenset()


def test_a_profile_replaces_the_limits_it_sets() -> None:
    (template,) = [t for t in builtin_templates("img") if t.name == "jupyterlab"]
    limited = with_profile(template, ProfileSpec(limits={"memory": "4g"}))  # type: ignore[arg-type]
    assert limited.limits.memory == "4g" and limited.limits.cpus == template.limits.cpus
    assert with_profile(template, None) is template
