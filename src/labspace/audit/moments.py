"""Parse the ``since``/``until`` of an audit query: ISO dates and times, or ``2h``, ``7d``.

Relative forms count back from now. Anything else, or a moment outside what a datetime can
hold (``99999999d``), is a BadMoment with a message fit for a 4xx answer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"(\d{1,7})\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_LENGTH = 64  # an ISO moment with an offset is at most ~32 characters


class BadMoment(ValueError):
    """``since``/``until`` is neither an ISO date/time nor a relative form like 7d."""


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """The UTC moment ``text`` names; naive ISO values are taken as UTC."""
    value = text.strip()
    if not value or len(value) > MAX_LENGTH:
        raise BadMoment("expected an ISO date/time (2024-05-01, 2024-05-01T12:00Z) "
                        "or a relative form (30m, 2h, 7d, 4w)")
    now = now or datetime.now(UTC)
    relative = _RELATIVE.fullmatch(value.lower())
    if relative:
        return _back_from(now, int(relative.group(1)), _UNITS[relative.group(2)], value)
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise BadMoment(f"not a date, time or relative form like 7d: {value!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the year 1 in UTC
        raise BadMoment(f"out of range: {value!r}") from None


def _back_from(now: datetime, amount: int, unit: str, text: str) -> datetime:
    try:
        return now - timedelta(**{unit: amount})
    except OverflowError:  # 9999999w: before the year 1
        raise BadMoment(f"too far back: {text!r}") from None
