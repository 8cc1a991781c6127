"""Local passwords: an account without one (made by the directory or single sign-on) is
refused after the same argon2 work as an unknown name, so the answer's time tells nobody
which names exist; a hash made with an older labspace's parameters is replaced at login."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from labspace.identity import authenticator as module
from labspace.identity.authenticator import LocalAuthenticator
from labspace.identity.users import SINGLE_SIGN_ON, UserService
from labspace.state.db import Database
from labspace.state.models import User


@pytest.fixture
async def users(tmp_path: Path) -> AsyncIterator[UserService]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
    await db.migrate()
    yield UserService(db)
    await db.close()


async def test_no_password_and_no_account_cost_the_same_hash(
        users: UserService, monkeypatch: pytest.MonkeyPatch) -> None:
    await users.create("ada", password="analytical-engine-1843")
    await users.sync_external_user(SINGLE_SIGN_ON, "sso-user", uid=None, gid=None, groups=[],
                                   is_admin=None, subject="sub-1")
    checked: list[str | None] = []
    real = module.verify_in_turn

    async def spy(stored: str | None, password: str) -> bool:  # records, then really verifies
        checked.append(stored)
        return await real(stored, password)
    monkeypatch.setattr(module, "verify_in_turn", spy)
    local = LocalAuthenticator(users)
    assert await local.authenticate("sso-user", "anything-at-all") is None
    assert await local.authenticate("nobody", "anything-at-all") is None
    assert await local.authenticate("ada", "analytical-engine-1843") == "ada"
    assert checked[0] == checked[1] == module.DUMMY_HASH
    assert checked[2] not in (None, module.DUMMY_HASH)
    # The dummy is made with today's parameters, so it costs what a real check costs.
    assert checked[2].split("$")[3] == module.DUMMY_HASH.split("$")[3] == "m=19456,t=2,p=1"


async def test_an_older_hash_still_logs_in_and_is_replaced(users: UserService) -> None:
    """A hash from before labspace chose OWASP's parameters (RFC 9106's, 64 MiB)."""
    await users.create("ada", password="analytical-engine-1843")
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(
        "analytical-engine-1843")
    async with users.db.session() as session:
        await session.execute(update(User).where(User.name == "ada").values(password_hash=old))
    local = LocalAuthenticator(users)
    assert await local.authenticate("ada", "wrong-password-1843") is None
    assert (await users.get("ada")).password_hash == old  # a failed login upgrades nothing
    assert await local.authenticate("ada", "analytical-engine-1843") == "ada"
    upgraded = (await users.get("ada")).password_hash
    assert upgraded and upgraded != old and "$m=19456,t=2,p=1$" in upgraded
    assert await local.authenticate("ada", "analytical-engine-1843") == "ada"
