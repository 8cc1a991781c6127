"""Idle policies as templates and profiles write them (labspace.templates.idle)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labspace.policy.model import ProfileSpec, with_profile
from labspace.templates import builtin_templates
from labspace.templates.idle import IdlePolicy, check_idle_after, parse_duration


@pytest.mark.parametrize(("text", "seconds", "written"), [
    ("8h", 8 * 3600, "8h"), ("30m", 1800, "30m"), ("90m", 5400, "1h 30m"),
    ("1h 30m", 5400, "1h 30m"), ("1H30M", 5400, "1h 30m"), ("2d", 2 * 86400, "2d"),
    ("1min", 60, "1m"), ("30d", 30 * 86400, "30d"),
])
def test_durations(text: str, seconds: int, written: str) -> None:
    assert parse_duration(text) == seconds
    assert check_idle_after(text) == written


@pytest.mark.parametrize("text", ["", "5", "30s", "h", "1m 30", "0m", "59m 60s", "31d",
                                  "-1h", "1.5h"])
def test_what_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|between 1m and 30d"):
        check_idle_after(text)


def test_a_profile_wins_and_never_turns_it_off() -> None:
    base = builtin_templates("labspace/jupyterlab:latest")[0]
    assert base.idle_policy is None  # the built-in template never stops on its own
    template = base.model_validate({**base.model_dump(), "idle_stop_after": "8h",
                                    "idle_cpu_below": 5})
    assert template.idle_policy == IdlePolicy(8 * 3600, 5.0)
    assert with_profile(template, None).idle_policy == IdlePolicy(8 * 3600, 5.0)
    assert with_profile(template, ProfileSpec()).idle_policy == IdlePolicy(8 * 3600, 5.0)
    shorter = ProfileSpec(idle_stop_after="30m")
    assert with_profile(template, shorter).idle_policy == IdlePolicy(1800, 5.0)
    assert with_profile(template, ProfileSpec(idle_stop_after="never")).idle_policy is None
    quiet = ProfileSpec(idle_cpu_below=50)
    assert with_profile(template, quiet).idle_policy == IdlePolicy(8 * 3600, 50.0)
    assert with_profile(base, shorter).idle_policy == IdlePolicy(1800, None)
    assert IdlePolicy(5400, 5).describe() == ("after 1h 30m without use, unless its CPU use "
                                              "is above 5%")
    with pytest.raises(ValidationError):
        ProfileSpec(idle_stop_after="10s")
    with pytest.raises(ValidationError):
        ProfileSpec(idle_cpu_below=0)
