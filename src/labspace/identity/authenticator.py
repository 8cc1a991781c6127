"""Pluggable authentication: a fixed pipeline around one overridable step.

``login`` runs authenticate -> normalise -> known and enabled user. A plug-in (LDAP, OIDC,
workshop credentials, in later releases) implements only ``authenticate``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from labspace.errors import NotAuthenticated, NotFound
from labspace.identity.passwords import verify_password
from labspace.identity.users import UserService
from labspace.state.models import User


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
        # Hashing is deliberately slow (~50 ms): keep it off the event loop.
        ok = await asyncio.to_thread(
            verify_password, user.password_hash if user else _DUMMY_HASH, password
        )
        return username if ok and user is not None else None


_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "Gm3pMC7WIDWfW8t7nVcAD+Lr5QQeebkrxCgMjXq9pZ0"
)


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
