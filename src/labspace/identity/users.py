"""Accounts: creation with a stable uid (never reused), listing, disabling, deleting."""

from __future__ import annotations

import asyncio
import builtins
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from labspace.errors import Conflict, InvalidInput, NotFound
from labspace.identity.passwordpolicy import DEFAULT_MIN_LENGTH, check_password
from labspace.identity.passwords import hash_in_turn
from labspace.identity.tokens import revoke_user_tokens
from labspace.identity.usersearch import UserFilter, UserPage, search_users
from labspace.names import validate_user_name
from labspace.state.db import Database
from labspace.state.models import RetiredUser, User

# Workspace uids start here, clear of the image's system and first human accounts.
UID_BASE = 10000
LOCAL, DIRECTORY, SINGLE_SIGN_ON = "local", "ldap", "oidc"  # User.source
WORKSHOP = "workshop"  # an attendee account a workshop made (and deletes)
MEMBER, INSTRUCTOR = "member", "instructor"  # User.role (admins are User.is_admin)
# Sources whose uids labspace allocates, from one range.
ALLOCATED = (LOCAL, WORKSHOP)
# Ids from a directory or provider below these are the system's (root, daemon, sudo, docker):
# a workspace never runs as one, nor has its files owned by one.
MIN_UID, MIN_GID = 1000, 100


@dataclass
class UserService:
    db: Database
    # The next uid is max(uid) + 1: creations in this process take turns, so they never race
    # for it; the retries below cover another process creating users at the same moment.
    _uid_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # Settings.password_min_length; passwords people choose follow identity/passwordpolicy.
    password_min_length: int = DEFAULT_MIN_LENGTH

    def check_password(self, name: str, password: str) -> None:
        check_password(password, user_name=name, min_length=self.password_min_length)

    async def create(
        self, name: str, *, password: str | None = None, is_admin: bool = False,
        generated: bool = False,
    ) -> User:
        """``generated``: the password is a random one (generate_password), not a person's
        choice, so the password policy does not apply."""
        validate_user_name(name)
        if password is not None and not generated:
            self.check_password(name, password)
        password_hash = await hash_in_turn(password) if password else None
        for _attempt in range(5):
            try:
                async with self._uid_lock, self.db.session() as session:
                    if await session.scalar(select(User.id).where(User.name == name)):
                        raise Conflict(f"user {name!r} exists already")
                    user = User(
                        name=name,
                        uid=await _next_local_uid(session),
                        password_hash=password_hash,
                        is_admin=is_admin,
                    )
                    session.add(user)
                return user
            except IntegrityError as error:
                if "name" in str(error.orig).lower() and "uid" not in str(error.orig).lower():
                    raise Conflict(f"user {name!r} exists already") from error
        raise Conflict("could not allocate a uid; try again")

    async def sync_external_user(
        self, source: str, name: str, *, uid: int | None, gid: int | None,
        groups: builtins.list[dict[str, Any]], is_admin: bool | None,
        subject: str | None = None,
    ) -> User:
        """Create or update the account of someone the lab's directory or identity provider
        (``source``) just logged in: its uid and gid where it has them, its groups (and admin
        rights when admin groups are configured). Refused (Conflict) for a name another
        source's account has, a name bound to another ``subject`` (the provider's id of the
        person: a renamed account at the provider cannot take over someone's name here), or
        a uid another account has; refused (InvalidInput) for a system uid or gid."""
        validate_user_name(name)
        _check_ids(uid, gid, groups)
        async with self._uid_lock, self.db.session() as session:
            user = await session.scalar(select(User).where(User.name == name))
            if user is not None and user.source != source:
                raise Conflict(f"{name!r} is a {user.source} account; the {source} account "
                               f"{name!r} cannot take it over")
            if user is not None and user.subject != subject:
                raise Conflict(f"{name!r} belongs to another {source} account (its id at "
                               "the provider changed)")
            if uid is not None:
                holder = await session.scalar(select(User).where(User.uid == uid))
                if holder is not None and holder is not user:
                    raise Conflict(f"uid {uid} of the {source} account {name!r} belongs to "
                                   f"{holder.name!r} here")
            elif user is None:
                uid = await _next_local_uid(session)
            if user is None:
                user = User(name=name, uid=uid, source=source, subject=subject,
                            is_admin=bool(is_admin))
                session.add(user)
            elif uid is not None:
                user.uid = uid
            user.gid, user.groups = gid, groups
            if is_admin is not None:
                user.is_admin = is_admin
        return user

    async def create_many(
        self, names: builtins.list[str], password_hashes: builtins.list[str], *, source: str,
        groups: builtins.list[dict[str, Any]],
    ) -> builtins.list[User]:
        """Make many accounts in one transaction (a workshop's): consecutive uids, all or
        none. The hashes are made by the caller (off the event loop, in parallel)."""
        for name in names:
            validate_user_name(name)
        async with self._uid_lock, self.db.session() as session:
            taken = list(await session.scalars(select(User.name).where(User.name.in_(names))))
            if taken:
                raise Conflict(f"these accounts exist already: {', '.join(sorted(taken)[:5])}"
                               + (" ..." if len(taken) > 5 else ""))
            first = await _next_local_uid(session)
            made = [User(name=name, uid=first + i, password_hash=password_hash, source=source,
                         groups=groups)
                    for i, (name, password_hash) in enumerate(zip(names, password_hashes,
                                                                   strict=True))]
            session.add_all(made)
        return made

    async def update(self, name: str, *, role: str | None = None,
                     groups: builtins.list[dict[str, Any]] | None = None) -> User:
        """Set an account's role, or the groups of an account labspace keeps (a directory's
        or provider's accounts get theirs at each login)."""
        if role is not None and role not in (MEMBER, INSTRUCTOR):
            raise InvalidInput(f"role {role!r}: use {MEMBER} or {INSTRUCTOR} (admins are made "
                               "with --admin)")
        if groups is not None:
            _check_ids(None, None, groups)
        async with self.db.session() as session:
            user = await session.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFound(f"no user {name!r}")
            if groups is not None:
                if user.source not in ALLOCATED:
                    raise InvalidInput(f"{name!r} gets its groups from the {user.source} "
                                       "login at each login; change them there")
                user.groups = groups
            if role is not None:
                user.role = role
        return user

    async def get(self, name: str) -> User:
        async with self.db.session() as session:
            user = await session.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    async def search(self, where: UserFilter | None = None, *, limit: int = 50,
                     offset: int = 0) -> UserPage:
        """One page of the accounts ``where`` selects, by name, and how many there are."""
        return await search_users(self.db, where or UserFilter(), limit=limit, offset=offset)

    async def list(self) -> builtins.list[User]:
        async with self.db.session() as session:
            return list(await session.scalars(select(User).order_by(User.name)))

    async def set_disabled(self, name: str, disabled: bool = True) -> User:
        """Disable (offboard) or re-enable a user; disabling ends all their sessions and tokens."""
        async with self.db.session() as session:
            user = await session.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFound(f"no user {name!r}")
            user.disabled = disabled
            if disabled:
                await revoke_user_tokens(session, user.id)
        return user

    async def set_password(self, name: str, password: str, *, generated: bool = False) -> None:
        if not generated:
            self.check_password(name, password)
        password_hash = await hash_in_turn(password)
        async with self.db.session() as session:
            user = await session.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFound(f"no user {name!r}")
            if user.source not in ALLOCATED:  # a second, forgotten way into the account
                raise InvalidInput(f"{name!r} logs in with the {user.source} login: its "
                                   "password is changed there, not here")
            user.password_hash = password_hash

    async def upgrade_hash(self, name: str, old_hash: str, password: str) -> None:
        """Re-hash a just-verified password with today's parameters, unless the password
        changed meanwhile. Sessions and tokens stay: the password is the same."""
        new_hash = await hash_in_turn(password)
        async with self.db.session() as session:
            await session.execute(update(User).where(User.name == name,
                                                     User.password_hash == old_hash)
                                  .values(password_hash=new_hash))

    async def delete(self, name: str, *, by: str) -> User:
        """Remove the account with its tokens, keys and workspace records (the database
        cascades); its uid is retired, never allocated again. The caller removes what lives
        outside the database first (Hub.delete_user)."""
        async with self._uid_lock, self.db.session() as session:
            user = await session.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFound(f"no user {name!r}")
            session.add(RetiredUser(name=user.name, uid=user.uid, source=user.source,
                                    deleted_by=by))
            # A statement, not the ORM's delete: the database's ON DELETE CASCADE removes the
            # tokens, keys and workspace rows in the same transaction.
            await session.execute(sql_delete(User).where(User.id == user.id))
        return user

    async def count(self) -> int:
        async with self.db.session() as session:
            return int(await session.scalar(select(func.count(User.id))) or 0)


async def _next_local_uid(session: AsyncSession) -> int:
    """The uid after the local accounts' highest: allocated above the local accounts only, so
    a directory's large uidNumbers do not push the range (the unique uid catches a clash)."""
    top = await session.scalar(select(func.max(User.uid)).where(User.source.in_(ALLOCATED)))
    retired = await session.scalar(
        select(func.max(RetiredUser.uid)).where(RetiredUser.source.in_(ALLOCATED)))
    return max(top or 0, retired or 0, UID_BASE - 1) + 1


def _check_ids(uid: int | None, gid: int | None, groups: list[dict[str, Any]]) -> None:
    if uid is not None and not MIN_UID <= uid < 2**31:
        raise InvalidInput(f"uid {uid} is a system uid (or out of range): not used")
    gids = [gid, *(group.get("gid") for group in groups)]
    for number in gids:
        if number is not None and not MIN_GID <= number < 2**31:
            raise InvalidInput(f"gid {number} is a system gid (or out of range): not used")
