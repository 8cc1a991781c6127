"""Idle policies: stop a personal workspace that nobody used for a while (issue 10).

A template sets ``idle_stop_after`` ("8h", "30m", "1h 30m", "2d"; unset: never) and, optionally,
``idle_cpu_below`` (percent of one core: a workspace busier than that is not idle, e.g. a
long training run with no browser open). A resource profile may set either; the profile's
wins, and its ``idle_stop_after = "never"`` turns a template's policy off. What counts as use
is the proxy's to say (labspace.proxy.activity); the hub acts on it (labspace.workspaces.culler).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field

NEVER = "never"
MIN_IDLE_S = 60  # shorter would stop someone who is reading a page
# The proxy forgets a key after 31 days without use (proxy/activity.py): a longer policy
# could not be measured.
MAX_IDLE_S = 30 * 86400
_DURATION = re.compile(r"(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m(?:in)?)?")
_UNITS = (86400, 3600, 60)
IDLE_AFTER_HELP = (
    "Stop a running workspace after this long without use (no request, WebSocket message or "
    "SSH session through the proxy), e.g. \"8h\", \"30m\", \"1h 30m\" (1m to 30d); the home "
    "is kept. Unset or \"never\": never.")
IDLE_CPU_HELP = (
    "With idle_stop_after: a workspace using more CPU than this (percent of one core) is not "
    "idle, e.g. 5 keeps a long computation running with no browser open.")


def parse_duration(text: str) -> int:
    """'8h', '30m', '1h 30m', '2d' -> seconds; ValueError for anything else."""
    compact = re.sub(r"\s+", "", text.lower())
    match = _DURATION.fullmatch(compact)
    if not compact or match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 8h, 30m, 1h 30m, 2d)")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _UNITS, strict=True)
               if part)


def check_idle_after(value: str | None) -> str | None:
    """A field validator: None (unset), "never", or a duration between 1 minute and 30 days,
    written back in one form ("90m" -> "1h 30m")."""
    if value is None:
        return None
    if value.strip().lower() == NEVER:
        return NEVER
    seconds = parse_duration(value)
    if not MIN_IDLE_S <= seconds <= MAX_IDLE_S:
        raise ValueError("an idle stop must be between 1m and 30d")
    return duration_text(seconds)


def duration_text(seconds: int) -> str:
    """3600 -> '1h', 5400 -> '1h 30m', 60 -> '1m' (whole minutes)."""
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0m"


@dataclass(frozen=True)
class IdlePolicy:
    stop_after: int  # seconds without use
    cpu_below: float | None = None  # percent of one core; busier is not idle

    @classmethod
    def of(cls, stop_after: str | None, cpu_below: float | None) -> IdlePolicy | None:
        """From a template's (or a profile-applied template's) two fields; None: never."""
        if stop_after is None or stop_after == NEVER:
            return None
        return cls(parse_duration(stop_after), cpu_below)

    def describe(self) -> str:
        """'after 8h without use, unless its CPU use is above 5%'."""
        text = f"after {duration_text(self.stop_after)} without use"
        if self.cpu_below is not None:
            text += f", unless its CPU use is above {self.cpu_below:g}%"
        return text


def _checked_after(value: str | None) -> str | None:
    return check_idle_after(value)


# The two idle fields, as templates and resource profiles both declare them (a profile's
# unset fields leave the template's): `idle_stop_after: IdleStopAfter = None`.
IdleStopAfter = Annotated[str | None, Field(description=IDLE_AFTER_HELP),
                          AfterValidator(_checked_after)]
IdleCpuBelow = Annotated[float | None, Field(gt=0, le=100_000, description=IDLE_CPU_HELP)]
