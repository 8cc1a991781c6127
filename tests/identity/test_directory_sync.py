"""Offboarding from the directory, against a real slapd: an account that left the directory
or its allowed groups is found by the periodic sweep; one still there is not; a directory
that stops finding everyone (a broken search) disables nobody."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from labspace.identity.authenticator import build_authenticator, login
from labspace.identity.directorysync import sweep
from labspace.identity.ldap import LdapConfig, LdapDirectory
from labspace.identity.users import UserService
from labspace.state.db import Database
from labspace.testing.slapd import Slapd
from tests.identity.test_ldap import settings_for

PEOPLE = ("gina", "hank", "ivan", "jill", "kate")


@pytest.fixture
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A directory of its own per test: tests here change who is in it."""
    server = Slapd(tmp_path_factory.mktemp("slapd")).start()
    for number, name in enumerate(PEOPLE):
        server.add_user(name, f"{name}-directory-pw", 55000 + number, 6000)
    server.add_group("students", 6002, list(PEOPLE))
    try:
        yield server
    finally:
        server.close()


@pytest_asyncio.fixture
async def users(slapd: Slapd, tmp_path: Path) -> AsyncIterator[UserService]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
    await db.migrate()
    service = UserService(db)
    await service.create("boss", password="corner-office-key", is_admin=True)
    authenticator = build_authenticator(settings_for(slapd, tmp_path), service)
    for name in PEOPLE:
        await login(authenticator, service, name, f"{name}-directory-pw")
    try:
        yield service
    finally:
        await db.close()


def directory(slapd: Slapd, tmp_path: Path, **changes: str) -> LdapDirectory:
    config = LdapConfig.from_settings(settings_for(slapd, tmp_path))
    return LdapDirectory(dataclasses.replace(config, **changes))


async def test_who_left_the_directory_or_its_allowed_groups_is_found(
        slapd: Slapd, users: UserService, tmp_path: Path) -> None:
    lab = directory(slapd, tmp_path)
    found = await sweep(lab, users, frozenset({"students"}))
    assert (found.checked, found.gone, found.held_back) == (5, (), False)
    slapd.set_member("students", "hank", False)
    slapd.remove_user("ivan")
    found = await sweep(lab, users, frozenset({"students"}))
    assert sorted(found.gone) == ["hank", "ivan"] and not found.held_back
    # Without allowed groups, leaving a group is no reason; leaving the directory is.
    assert (await sweep(lab, users, frozenset())).gone == ("ivan",)
    # Local accounts and the disabled are not the directory's business.
    await users.set_disabled("ivan", True)
    assert (await sweep(lab, users, frozenset())).checked == 4


async def test_a_search_that_finds_nobody_disables_nobody(
        slapd: Slapd, users: UserService, tmp_path: Path) -> None:
    broken = directory(slapd, tmp_path, user_base=f"cn=nobody,{slapd.base}")
    found = await sweep(broken, users, frozenset())
    assert found.held_back and len(found.gone) == found.checked
