"""The login throttle: identity/throttle.py's rules over failures kept in the database.

In the database, not in the hub's memory, so a restart forgets no failure and every hub on one
database counts the same ones. Each check reads only what the rules need (the pair's newest
failures, the account's newest, the address's recent ones: a few small indexed queries); each
failure deletes the rows too old to matter, so the table holds at most ``rules.memory``
seconds of failures, and every failure cost a password check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from labspace.identity.throttle import Failure, ThrottleRules, address_key
from labspace.state.db import Database
from labspace.state.models import LoginFailure

# Both columns are String(100): the login form takes names up to 100 characters and an
# address key is at most 43; anything longer is counted by its first 100.
FIELD_LENGTH = 100


class LoginThrottle:
    def __init__(self, db: Database, rules: ThrottleRules | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.rules = rules or ThrottleRules()
        self.clock = clock  # wall-clock seconds: they must mean the same after a restart

    async def check(self, username: str, address: str) -> None:
        """Raise TooManyAttempts when this attempt must not even be checked."""
        now = self.clock()
        account, key = _keys(username, address)
        async with self.db.session() as session:
            failures = await self._recent(session, account, key, now)
        self.rules.check(account, key, failures, now)

    async def failed(self, username: str, address: str) -> None:
        now = self.clock()
        account, key = _keys(username, address)
        async with self.db.session() as session:
            session.add(LoginFailure(account=account, address=key, at=_moment(now)))
            await session.execute(
                delete(LoginFailure).where(LoginFailure.at <= _moment(now - self.rules.memory)))

    async def succeeded(self, username: str, address: str) -> None:
        """The password was right: this pair starts afresh and no longer counts as spraying.
        The account's own count stays: the attack on it may go on."""
        account, key = _keys(username, address)
        async with self.db.session() as session:
            await session.execute(
                update(LoginFailure)
                .where(LoginFailure.account == account, LoginFailure.address == key,
                       LoginFailure.forgiven.is_(False))
                .values(forgiven=True))

    async def _recent(self, session: AsyncSession, account: str, address: str,
                      now: float) -> list[Failure]:
        rules = self.rules
        since = _moment(now - rules.memory)
        newest = (LoginFailure.at.desc(), LoginFailure.id.desc())
        pair = select(LoginFailure).where(
            LoginFailure.account == account, LoginFailure.address == address,
            LoginFailure.forgiven.is_(False), LoginFailure.at > since,
        ).order_by(*newest).limit(rules.max_failures)
        of_account = select(LoginFailure).where(
            LoginFailure.account == account, LoginFailure.at > since,
        ).order_by(*newest).limit(rules.account_failures)
        from_address = select(LoginFailure).where(
            LoginFailure.address == address, LoginFailure.forgiven.is_(False),
            LoginFailure.at > since,
        )
        rows: dict[int, LoginFailure] = {}
        for query in (pair, of_account, from_address):
            rows.update((row.id, row) for row in await session.scalars(query))
        return [Failure(row.account, row.address, row.at.timestamp(), row.forgiven)
                for row in rows.values()]


def _keys(username: str, address: str) -> tuple[str, str]:
    return username[:FIELD_LENGTH], address_key(address)[:FIELD_LENGTH]


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
