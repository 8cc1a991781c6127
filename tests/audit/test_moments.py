"""since/until: ISO dates and times, relative forms, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labspace.audit import BadMoment, parse_moment

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", NOW - timedelta(minutes=30)),
    ("2h", NOW - timedelta(hours=2)),
    ("7d", NOW - timedelta(days=7)),
    ("4W", NOW - timedelta(weeks=4)),
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ("2024-05-01T12:30Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    ("2024-05-01T14:30+02:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
])
def test_moments(text: str, expected: datetime) -> None:
    assert parse_moment(text, now=NOW) == expected


@pytest.mark.parametrize("text", [
    "", "yesterday", "7", "-7d", "1e9d", "9999999w", "0001-01-01T00:00+01:00", "2024-13-01",
    "7d" * 100,
])
def test_bad_moments_are_refused_clearly(text: str) -> None:
    with pytest.raises(BadMoment):
        parse_moment(text, now=NOW)
