"""Finding accounts at workshop scale: a name search and filters, one page at a time, with
the total for the pager. Everything is filtered in SQL (the groups too), on SQLite and
PostgreSQL alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnClause

from labspace.errors import InvalidInput
from labspace.state.db import Database
from labspace.state.models import User, Workshop, WorkshopSeat

Role = Literal["admin", "instructor", "member"]
UserState = Literal["enabled", "disabled"]
ROLES: tuple[str, ...] = ("admin", "instructor", "member")
STATES: tuple[str, ...] = ("enabled", "disabled")
MAX_PAGE = 500


@dataclass(frozen=True)
class UserFilter:
    q: str = ""  # a part of the name, any case
    group: str = ""  # a group's name (from the directory or provider), any case
    role: str = ""  # admin, instructor or member
    state: str = ""  # enabled or disabled
    source: str = ""  # local, ldap, oidc or workshop
    workshop: str = ""  # a workshop's name: its attendees (seats)

    def __post_init__(self) -> None:
        if self.role and self.role not in ROLES:
            raise InvalidInput(f"role is one of {', '.join(ROLES)}, not {self.role!r}")
        if self.state and self.state not in STATES:
            raise InvalidInput(f"state is one of {', '.join(STATES)}, not {self.state!r}")


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    total: int  # how many match, over every page


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_users(db: Database, where: UserFilter, *, limit: int = 50,
                       offset: int = 0) -> UserPage:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_PAGE}")
    if offset < 0:
        raise InvalidInput("offset is 0 or more")
    conditions = _conditions(where, db.engine.dialect.name)
    async with db.session() as session:
        total = await session.scalar(select(func.count(User.id)).where(*conditions))
        query = (select(User).where(*conditions).order_by(User.name)
                 .limit(limit).offset(offset))
        users = list(await session.scalars(query))
    return UserPage(users, int(total or 0))


def _conditions(where: UserFilter, dialect: str) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if where.q:
        found.append(User.name.ilike(f"%{escape_like(where.q.strip().lower())}%", escape="\\"))
    if where.group:
        found.append(_in_group(where.group.strip().lower(), dialect))
    if where.role == "admin":
        found.append(User.is_admin.is_(True))
    elif where.role:
        found.append(and_(User.is_admin.is_(False), User.role == where.role))
    if where.state:
        found.append(User.disabled.is_(where.state == "disabled"))
    if where.source:
        found.append(User.source == where.source)
    if where.workshop:
        found.append(User.id.in_(
            select(WorkshopSeat.user_id).join(Workshop, Workshop.id == WorkshopSeat.workshop_id)
            .where(Workshop.name == where.workshop.strip())))
    return found


def _in_group(group: str, dialect: str) -> ColumnElement[bool]:
    """Whether users.groups (a JSON list of {"name", "gid"}) has a group of that name: the
    list's elements as rows (SQLite's json_each, PostgreSQL's json_array_elements), correlated
    with the user's row."""
    element: Any
    name: ColumnElement[Any]
    if dialect == "postgresql":
        # A JSON null or a non-list holds no groups (json_array_elements would fail on it).
        groups = case((func.json_typeof(User.groups) == "array", User.groups),
                      else_=cast(literal("[]"), User.groups.type))
        element = func.json_array_elements(groups).table_valued("value").alias("g")
        value: ColumnClause[Any] = element.c.value
        name = value.op("->>")(literal("name"))
    else:
        element = func.json_each(User.groups).table_valued("value").alias("g")
        name = func.json_extract(element.c.value, "$.name")
    return select(literal(1)).select_from(element).where(
        func.lower(name) == group).exists().correlate(User)


__all__ = ["ROLES", "STATES", "UserFilter", "UserPage", "search_users"]
