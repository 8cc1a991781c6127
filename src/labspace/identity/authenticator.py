"""Pluggable authentication: a fixed pipeline around one overridable step.

``login`` runs authenticate -> normalise -> known and enabled user. A method implements only
``authenticate``: local accounts, the lab's directory (which also creates or updates the
account from the entry), or several in turn (``FirstOf``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from labspace.config import Settings
from labspace.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, RuntimeFailure
from labspace.identity.ldap import LdapConfig, LdapDirectory
from labspace.identity.passwords import DUMMY_HASH, needs_rehash, verify_in_turn
from labspace.identity.users import DIRECTORY, UserService
from labspace.state.models import User

log = logging.getLogger(__name__)


class Authenticator(Protocol):
    async def authenticate(self, username: str, password: str) -> str | None:
        """The user name these credentials prove, or None."""
        ...


@dataclass
class LocalAuthenticator:
    """Accounts kept in labspace's own database, with argon2 password hashes."""

    users: UserService

    async def authenticate(self, username: str, password: str) -> str | None:
        try:
            user = await self.users.get(username)
        except NotFound:
            user = None
        # An account without a password (the directory's, single sign-on's) costs the same
        # hash as an unknown name, so the time of the answer tells nobody which names exist.
        stored = user.password_hash if user is not None else None
        ok = await verify_in_turn(stored or DUMMY_HASH, password)
        if ok and stored and needs_rehash(stored):  # an older labspace's parameters
            await self.users.upgrade_hash(username, stored, password)
        return username if ok and stored else None


@dataclass
class DirectoryAuthenticator:
    """The lab's LDAP directory: a successful bind creates or updates the account (uid,
    gid, groups, admin rights from ``admin_groups``); ``allowed_groups`` limits who may."""

    directory: LdapDirectory
    users: UserService
    allowed_groups: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()

    async def authenticate(self, username: str, password: str) -> str | None:
        found = await asyncio.to_thread(self.directory.find, username, password)
        if found is None:
            return None
        groups = {group.name for group in found.groups}
        if self.allowed_groups and not groups & self.allowed_groups:
            log.info("directory user %r is in none of the allowed groups", found.name)
            return None
        name = normalise(found.name)
        try:
            await self.users.sync_external_user(
                DIRECTORY, name, uid=found.uid, gid=found.gid,
                groups=[{"name": group.name, "gid": group.gid} for group in found.groups],
                is_admin=bool(groups & self.admin_groups) if self.admin_groups else None)
        except (Conflict, InvalidInput) as error:
            log.warning("directory user %r cannot log in: %s", found.name, error.message)
            raise NotAuthenticated(
                "your directory account cannot be used here; an administrator can see why "
                "in the hub's log") from None
        return name


@dataclass
class FirstOf:
    """Several methods in turn (the directory, then local accounts, so the admins labspace
    made still log in when the directory is down); the first that proves the password wins.
    When none does and a method could not be asked, that is the answer."""

    methods: list[Authenticator]

    async def authenticate(self, username: str, password: str) -> str | None:
        unavailable: RuntimeFailure | None = None
        for method in self.methods:
            try:
                name = await method.authenticate(username, password)
            except RuntimeFailure as error:
                log.warning("login method %s failed: %s", type(method).__name__, error.message)
                unavailable = error
                continue
            if name is not None:
                return name
        if unavailable is not None:
            raise RuntimeFailure("the lab's directory did not answer; try again in a minute")
        return None


def lab_directory(settings: Settings) -> LdapDirectory | None:
    return LdapDirectory(LdapConfig.from_settings(settings)) if settings.auth == "ldap" else None


def build_authenticator(settings: Settings, users: UserService,
                        directory: LdapDirectory | None = None) -> Authenticator:
    local = LocalAuthenticator(users)
    if settings.auth != "ldap":
        return local
    directory_method = DirectoryAuthenticator(
        directory or LdapDirectory(LdapConfig.from_settings(settings)), users,
        frozenset(g.lower() for g in settings.ldap_allowed_groups),
        frozenset(g.lower() for g in settings.ldap_admin_groups))
    return FirstOf([directory_method, local])


def normalise(username: str) -> str:
    return username.strip().lower()


async def login(
    authenticator: Authenticator, users: UserService, username: str, password: str
) -> User:
    """The pipeline every login goes through, whichever authenticator proves the password."""
    name = await authenticator.authenticate(normalise(username), password)
    if name is None:
        raise NotAuthenticated("wrong user name or password")
    user = await users.get(normalise(name))
    if user.disabled:
        raise NotAuthenticated("this account is disabled; ask an administrator")
    return user
