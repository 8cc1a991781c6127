"""Workshops in the database: their seats (attendee accounts), cards, resets and expiry.

What happens to the accounts' sessions, workspaces and homes (offboarding, deletion) is the
hub's: it calls these and then Hub.offboard / Hub.delete_user (labspace.hub).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from labspace.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labspace.identity.passwords import hash_in_turn
from labspace.identity.tokens import revoke_user_tokens
from labspace.identity.users import WORKSHOP, UserService
from labspace.names import validate_name
from labspace.state.db import Database
from labspace.state.models import User, Workshop, WorkshopSeat
from labspace.workshops.credentials import (
    Sealer,
    SeatSecret,
    link_digest,
    new_link_token,
    readable_password,
)
from labspace.workshops.sheet import Card

MAX_SEATS = 1000
MAX_LIFETIME = timedelta(days=366)
JOIN_PATH = "/hub/join"  # the one-click login page; the token rides in the fragment


@dataclass(frozen=True)
class WorkshopInfo:
    name: str
    created_by: str
    instructors: tuple[str, ...]
    template: str | None
    expires_at: datetime
    expired: bool
    seats: int
    created_at: datetime
    app: str | None = None  # the instant app their link opens (instead of a workspace)

    def managed_by(self, name: str, *, is_admin: bool) -> bool:
        return is_admin or name == self.created_by or name in self.instructors


def _info(workshop: Workshop, seats: int) -> WorkshopInfo:
    return WorkshopInfo(workshop.name, workshop.created_by, tuple(workshop.instructors),
                        workshop.template, workshop.expires_at, workshop.expired, seats,
                        workshop.created_at, workshop.app)


def seat_names(name: str, count: int) -> list[str]:
    """genomics-01 ... genomics-60: zero-padded so they sort as they are numbered."""
    width = max(2, len(str(count)))
    names = [f"{name}-{seat:0{width}d}" for seat in range(1, count + 1)]
    if len(names[-1]) > 30:
        raise InvalidInput(f"workshop name {name!r} is too long for {count} seats "
                           f"({names[-1]!r} passes the 30 characters of a user name)")
    return names


def join_url(site: str, token: str) -> str:
    # In the fragment: browsers never send it to a server, so it appears in no access log,
    # proxy log or Referer; the join page posts it.
    return f"{site}{JOIN_PATH}#{token}"


class WorkshopService:
    def __init__(self, db: Database, users: UserService, sealer: Sealer) -> None:
        self.db = db
        self.users = users
        self.sealer = sealer

    async def create(self, name: str, *, seats: int, expires_at: datetime, by: str,
                     template: str | None = None, app: str | None = None) -> WorkshopInfo:
        validate_name(name, kind="workshop name")
        if template is not None and app is not None:
            raise InvalidInput("a workshop opens a workspace (template) or an app, not both")
        if not 1 <= seats <= MAX_SEATS:
            raise InvalidInput(f"a workshop has 1 to {MAX_SEATS} seats")
        check_expiry(expires_at)
        names = seat_names(name, seats)
        secrets_ = [SeatSecret(readable_password(), new_link_token()) for _ in names]
        # On the cores the hashing pool spares, in turn with the logins going on meanwhile.
        hashes = await asyncio.gather(*(hash_in_turn(secret.password) for secret in secrets_))
        async with self.db.session() as session:
            if await session.scalar(select(Workshop.id).where(Workshop.name == name)):
                raise Conflict(f"workshop {name!r} exists already")
        # The attendees share one group, named after the workshop (no gid: no folder), so an
        # [access.<workshop>] rule can set their profiles.
        users = await self.users.create_many(names, list(hashes), source=WORKSHOP,
                                              groups=[{"name": name, "gid": None}])
        try:
            async with self.db.session() as session:
                workshop = Workshop(name=name, created_by=by, instructors=[by],
                                    template=template, app=app, expires_at=expires_at,
                                    expired=False)
                session.add(workshop)
                await session.flush()
                session.add_all(
                    WorkshopSeat(user_id=user.id, workshop_id=workshop.id, seat=number,
                                 sealed=self.sealer.seal(secret),
                                 link_digest=link_digest(secret.link_token))
                    for number, (user, secret) in enumerate(zip(users, secrets_, strict=True),
                                                            start=1))
        except BaseException:
            await self._remove_accounts(users)  # all or nothing
            raise
        return _info(workshop, len(users))

    async def _remove_accounts(self, users: Sequence[User]) -> None:
        for user in users:
            await self.users.delete(user.name, by="workshop creation (undone)")

    async def list(self) -> builtins.list[WorkshopInfo]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Workshop).options(selectinload(Workshop.seats)).order_by(Workshop.name))
            return [_info(row, len(row.seats)) for row in rows]

    async def get(self, name: str) -> WorkshopInfo:
        async with self.db.session() as session:
            row = await self._row(session, name)
            return _info(row, len(row.seats))

    async def _row(self, session: AsyncSession, name: str) -> Workshop:
        row = await session.scalar(select(Workshop).options(selectinload(Workshop.seats))
                                   .where(Workshop.name == name))
        if row is None:
            raise NotFound(f"no workshop {name!r}")
        return row

    async def members(self, name: str) -> builtins.list[str]:
        """The attendees' account names, in seat order."""
        async with self.db.session() as session:
            row = await self._row(session, name)
            rows = await session.execute(
                select(User.name).join(WorkshopSeat, WorkshopSeat.user_id == User.id)
                .where(WorkshopSeat.workshop_id == row.id).order_by(WorkshopSeat.seat))
            return [name for (name,) in rows]

    async def cards(self, name: str, site: str, *, user: str | None = None
                    ) -> builtins.list[Card]:
        """The credential cards (all, or one attendee's), opened with the hub's key."""
        async with self.db.session() as session:
            row = await self._row(session, name)
            query = (select(WorkshopSeat, User).join(User, WorkshopSeat.user_id == User.id)
                     .where(WorkshopSeat.workshop_id == row.id).order_by(WorkshopSeat.seat))
            if user is not None:
                query = query.where(User.name == user)
            found = (await session.execute(query)).all()
        if user is not None and not found:
            raise NotFound(f"{user!r} is not an attendee of {name!r}")
        cards = []
        for seat, account in found:
            secret = self.sealer.open(seat.sealed)
            if secret is None:
                raise Conflict("the cards were sealed with another secret_key: reset the "
                               "attendees to print new ones")
            cards.append(Card(workshop=name, seat=seat.seat, user=account.name,
                              password=secret.password,
                              login_url=join_url(site, secret.link_token),
                              expires_at=row.expires_at, site=site))
        return cards

    async def reset(self, name: str, user: str) -> None:
        """A new password and login link for one attendee; their sessions end (the hub
        cuts their open connections)."""
        secret = SeatSecret(readable_password(), new_link_token())
        password_hash = await hash_in_turn(secret.password)
        async with self.db.session() as session:
            row = await self._row(session, name)
            found = (await session.execute(
                select(WorkshopSeat, User).join(User, WorkshopSeat.user_id == User.id)
                .where(WorkshopSeat.workshop_id == row.id, User.name == user))).first()
            if found is None:
                raise NotFound(f"{user!r} is not an attendee of {name!r}")
            seat, account = found
            seat.sealed = self.sealer.seal(secret)
            seat.link_digest = link_digest(secret.link_token)
            account.password_hash = password_hash
            await revoke_user_tokens(session, account.id)

    async def set_expiry(self, name: str, expires_at: datetime) -> WorkshopInfo:
        """Move the end; the caller enables the accounts again when it had expired."""
        check_expiry(expires_at)
        async with self.db.session() as session:
            row = await self._row(session, name)
            row.expires_at, row.expired = expires_at, False
            return _info(row, len(row.seats))

    async def add_instructor(self, name: str, instructor: str) -> WorkshopInfo:
        await self.users.get(instructor)  # NotFound for a typo
        async with self.db.session() as session:
            row = await self._row(session, name)
            if instructor not in row.instructors:
                row.instructors = [*row.instructors, instructor]
            return _info(row, len(row.seats))

    async def due(self, now: datetime | None = None) -> builtins.list[str]:
        """Workshops past their end whose accounts are still enabled."""
        now = now or datetime.now(UTC)
        async with self.db.session() as session:
            rows = await session.scalars(select(Workshop.name).where(
                Workshop.expires_at <= now, Workshop.expired.is_(False)))
            return list(rows)

    async def mark_expired(self, name: str) -> None:
        async with self.db.session() as session:
            (await self._row(session, name)).expired = True

    async def forget(self, name: str) -> None:
        """Remove the workshop's row once the hub deleted its accounts."""
        async with self.db.session() as session:
            row = await self._row(session, name)
            if row.seats:
                raise Conflict(f"workshop {name!r} still has {len(row.seats)} accounts")
            await session.delete(row)

    async def of_user(self, user_id: int) -> WorkshopInfo | None:
        async with self.db.session() as session:
            seat = await session.scalar(select(WorkshopSeat).where(
                WorkshopSeat.user_id == user_id))
            if seat is None:
                return None
            row = await session.scalar(select(Workshop).options(selectinload(Workshop.seats))
                                       .where(Workshop.id == seat.workshop_id))
            assert row is not None
            return _info(row, len(row.seats))

    async def account_of_link(self, token: str) -> tuple[User, WorkshopInfo] | None:
        """The attendee a login link is for, while their workshop runs; else None."""
        async with self.db.session() as session:
            seat = await session.scalar(select(WorkshopSeat).where(
                WorkshopSeat.link_digest == link_digest(token)))
            if seat is None:
                return None
            user = await session.get(User, seat.user_id)
            row = await session.scalar(select(Workshop).options(selectinload(Workshop.seats))
                                       .where(Workshop.id == seat.workshop_id))
        if user is None or row is None or row.expired or row.expires_at <= datetime.now(UTC):
            return None
        return user, _info(row, len(row.seats))

def check_expiry(expires_at: datetime) -> None:
    if expires_at.tzinfo is None:
        raise InvalidInput("the expiry needs a time zone (UTC)")
    now = datetime.now(UTC)
    if expires_at <= now:
        raise InvalidInput("the expiry is in the past")
    if expires_at > now + MAX_LIFETIME:
        raise InvalidInput("a workshop lasts at most a year; extend it later if need be")


def require_manager(info: WorkshopInfo, name: str, *, is_admin: bool) -> None:
    if not info.managed_by(name, is_admin=is_admin):
        # NotFound would hide it, but instructors may list all workshop names anyway.
        raise PermissionDenied(f"you do not manage workshop {info.name!r}")
