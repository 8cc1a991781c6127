"""When a workshop ends, as people write it: ``2026-12-01`` (the end of that day, UTC),
an ISO time (``2026-12-01T17:00+01:00``) or a time from now (``8h``, ``3d``, ``2w``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from labspace.errors import InvalidInput

_FROM_NOW = re.compile(r"\+?(\d{1,4})\s*([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime:
    value = text.strip()
    now = now or datetime.now(UTC)
    relative = _FROM_NOW.fullmatch(value.lower())
    if relative:
        return now + timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    if len(value) > 40:
        raise InvalidInput("the expiry is too long to be a date")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:  # the whole day counts: the workshop ends at the next midnight, UTC
        if day >= date.max:
            raise InvalidInput(f"out of range: {value!r}")
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not a date, a time or a duration like 3d: {value!r} (e.g. "
                           "2026-12-01, 2026-12-01T17:00Z, 8h, 3d)") from None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the year 1 in UTC
        raise InvalidInput(f"out of range: {value!r}") from None
