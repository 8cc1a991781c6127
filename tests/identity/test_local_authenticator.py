"""Local passwords: an account without one (made by the directory or single sign-on) is
refused after the same argon2 work as an unknown name, so the answer's time tells nobody
which names exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from labspace.identity import authenticator as module
from labspace.identity.authenticator import LocalAuthenticator
from labspace.identity.users import SINGLE_SIGN_ON, UserService
from labspace.state.db import Database


async def test_no_password_and_no_account_cost_the_same_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
    await db.migrate()
    users = UserService(db)
    await users.create("ada", password="analytical-engine-1843")
    await users.sync_external_user(SINGLE_SIGN_ON, "sso-user", uid=None, gid=None, groups=[],
                                   is_admin=None, subject="sub-1")
    checked: list[str | None] = []
    real = module.verify_password

    def spy(stored: str | None, password: str) -> bool:  # records, then really verifies
        checked.append(stored)
        return real(stored, password)
    monkeypatch.setattr(module, "verify_password", spy)
    local = LocalAuthenticator(users)
    try:
        assert await local.authenticate("sso-user", "anything-at-all") is None
        assert await local.authenticate("nobody", "anything-at-all") is None
        assert await local.authenticate("ada", "analytical-engine-1843") == "ada"
    finally:
        await db.close()
    assert checked[0] == checked[1] == module._DUMMY_HASH
    assert checked[2] not in (None, module._DUMMY_HASH)
