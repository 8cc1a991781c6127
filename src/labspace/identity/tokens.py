"""Session cookies and API tokens: random secrets of which only a SHA-256 digest is stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from labspace.identity.credentials import SESSION_COOKIE, TOKEN_PREFIX, digest, plausible_token
from labspace.state.models import Token, User

__all__ = [
    "SESSION_COOKIE",
    "Resolved",
    "digest",
    "issue_token",
    "resolve_token",
    "revoke_token",
    "revoke_user_tokens",
]


@dataclass(frozen=True)
class Resolved:
    user: User
    token: Token


async def issue_token(
    session: AsyncSession, user: User, *, kind: str, note: str = "", max_age: int | None = None
) -> str:
    """Create a token for ``user``; returns the secret value (shown once, never stored)."""
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=max_age) if max_age else None
    session.add(
        Token(user_id=user.id, kind=kind, digest=digest(value), note=note, expires_at=expires)
    )
    await session.flush()
    return value


async def resolve_token(session: AsyncSession, value: str) -> Resolved | None:
    """The active user behind a token value, or None (unknown, expired, or user disabled)."""
    if not plausible_token(value):
        return None
    row = (
        await session.execute(
            select(Token, User)
            .join(User, Token.user_id == User.id)
            .where(Token.digest == digest(value))
        )
    ).first()
    if row is None:
        return None
    token, user = row
    if user.disabled or (token.expires_at and token.expires_at < datetime.now(UTC)):
        return None
    return Resolved(user=user, token=token)


async def revoke_token(session: AsyncSession, value: str) -> None:
    await session.execute(delete(Token).where(Token.digest == digest(value)))


async def revoke_user_tokens(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(Token).where(Token.user_id == user_id))
