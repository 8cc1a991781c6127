"""Finding accounts (identity/usersearch.py) on SQLite and PostgreSQL: a name search with
LIKE's wildcards taken literally, the group, role, state, source and workshop filters, pages
and the total."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labspace.errors import InvalidInput
from labspace.identity.users import DIRECTORY, UserService
from labspace.identity.usersearch import UserFilter
from labspace.state.db import Database
from labspace.state.models import User, Workshop, WorkshopSeat


async def _lab(db: Database) -> UserService:
    users = UserService(db)
    for i in range(30):
        await users.create(f"stud-{i:02d}")
    await users.create("boss", is_admin=True)
    await users.sync_external_user(DIRECTORY, "dora", uid=54321, gid=6000, is_admin=None,
                                   groups=[{"name": "PhD", "gid": 6001},
                                           {"name": "admins", "gid": None}])
    await users.sync_external_user(DIRECTORY, "dan", uid=54322, gid=6000, is_admin=None,
                                   groups=[{"name": "phd-alumni", "gid": 6002}])
    await users.set_disabled("stud-03")
    async with db.session() as session:
        (await session.get(User, (await users.get("stud-04")).id)).role = "instructor"  # type: ignore[union-attr]
        course = Workshop(name="intro", created_by="boss",
                          expires_at=datetime.now(UTC) + timedelta(days=1))
        session.add(course)
        await session.flush()
        for seat, name in enumerate(("stud-10", "stud-11"), start=1):
            user = await users.get(name)
            session.add(WorkshopSeat(user_id=user.id, workshop_id=course.id, seat=seat,
                                     sealed="x", link_digest=f"{seat:064d}"))
    return users


async def test_search_filters_pages_and_counts(db: Database) -> None:
    users = await _lab(db)

    async def names(**where: str) -> list[str]:
        return [user.name for user in (await users.search(UserFilter(**where),
                                                          limit=500)).users]

    page = await users.search(limit=10, offset=10)
    assert page.total == 33 and len(page.users) == 10
    assert [u.name for u in page.users] == [f"stud-{i:02d}" for i in range(7, 17)]
    assert await names(q="STUD-0") == [f"stud-{i:02d}" for i in range(10)]
    assert await names(q="%") == [] and await names(q="_") == []  # wildcards are literal
    assert await names(q="d-1") == [f"stud-{i:02d}" for i in range(10, 20)]
    assert await names(group="phd") == ["dora"]  # the whole name, any case
    assert await names(group="admins") == ["dora"] and await names(group="ph") == []
    assert await names(role="admin") == ["boss"]
    assert await names(role="instructor") == ["stud-04"]
    assert len(await names(role="member")) == 31
    assert await names(state="disabled") == ["stud-03"]
    assert len(await names(state="enabled")) == 32
    assert await names(source="ldap") == ["dan", "dora"]
    assert await names(workshop="intro") == ["stud-10", "stud-11"]
    assert await names(workshop="intro", q="11") == ["stud-11"]
    assert await names(workshop="nope") == []
    assert (await users.search(UserFilter(q="stud"), limit=5)).total == 30


async def test_search_refuses_bad_bounds_and_values(db: Database) -> None:
    users = UserService(db)
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        with pytest.raises(InvalidInput):
            await users.search(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        UserFilter(role="root")
    with pytest.raises(InvalidInput):
        UserFilter(state="gone")
