"""Users' SSH public keys: in the database, mirrored to each user's authorized_keys file.

The database is the truth; the file is rewritten from it after every change, at every
workspace start and when the hub starts (so a file lost or edited on disk heals). A disabled
user's file is empty: a key must not outlive the account.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from labspace.errors import Conflict, InvalidInput, NotFound
from labspace.ssh.files import SshFiles
from labspace.ssh.keys import parse_public_key
from labspace.state.db import Database
from labspace.state.models import SshKey, User

MAX_KEYS_PER_USER = 50
MAX_NAME = 100
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]*$")


@dataclass(frozen=True)
class KeyInfo:
    id: int
    owner: str
    name: str
    kind: str
    fingerprint: str
    public_key: str
    created_at: datetime


def _info(key: SshKey, owner: str) -> KeyInfo:
    return KeyInfo(key.id, owner, key.name, key.public_key.split(" ", 1)[0],
                   key.fingerprint, key.public_key, key.created_at)


@dataclass
class SshKeyStore:
    db: Database
    files: SshFiles
    # One rewrite of a user's file at a time, so two changes cannot land in the wrong order.
    _locks: defaultdict[str, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock), repr=False)

    async def add(self, user: User, text: str, name: str = "") -> KeyInfo:
        key = parse_public_key(text)
        name = (name or key.comment or key.kind).strip()
        if len(name) > MAX_NAME or not _NAME_OK.match(name):
            raise InvalidInput(f"a key's name is at most {MAX_NAME} printable characters")
        try:
            async with self.db.session() as session:
                count = await session.scalar(
                    select(func.count()).select_from(SshKey).where(SshKey.user_id == user.id))
                if (count or 0) >= MAX_KEYS_PER_USER:
                    raise InvalidInput(f"you have {MAX_KEYS_PER_USER} keys already; "
                                       "remove one you no longer use first")
                row = SshKey(user_id=user.id, name=name, public_key=key.openssh,
                             fingerprint=key.fingerprint)
                session.add(row)
                await session.flush()
                info = _info(row, user.name)
        except IntegrityError:
            raise Conflict(f"that key ({key.fingerprint}) is registered already") from None
        await self.sync(user.name)
        return info

    async def list(self, owner: str | None = None) -> builtins.list[KeyInfo]:
        """One user's keys, or everyone's (for admins) when ``owner`` is None."""
        query = select(SshKey, User.name).join(User, SshKey.user_id == User.id)
        if owner is not None:
            query = query.where(User.name == owner)
        async with self.db.session() as session:
            rows = (await session.execute(query.order_by(User.name, SshKey.id))).all()
        return [_info(key, name) for key, name in rows]

    async def remove(self, user: User, key_id: int) -> None:
        async with self.db.session() as session:
            key = await session.scalar(
                select(SshKey).where(SshKey.id == key_id, SshKey.user_id == user.id))
            if key is None:  # another user's key is as unknown as a missing one
                raise NotFound(f"you have no key {key_id}")
            await session.delete(key)
        await self.sync(user.name)

    async def sync(self, owner: str) -> None:
        """Rewrite ``owner``'s authorized_keys from the database."""
        async with self._locks[owner]:
            async with self.db.session() as session:
                user = await session.scalar(select(User).where(User.name == owner))
                keys = [] if user is None or user.disabled else list(await session.scalars(
                    select(SshKey.public_key).where(SshKey.user_id == user.id)
                    .order_by(SshKey.id)))
            await self.files.write_authorized_keys(owner, keys)

    async def sync_all(self) -> int:
        """Every user's file (at hub start); returns how many users have keys."""
        async with self.db.session() as session:
            names = list(await session.scalars(
                select(User.name).join(SshKey, SshKey.user_id == User.id).distinct()))
        for name in names:
            await self.sync(name)
        return len(names)
