"""Logging in against a real OpenLDAP server (slapd, on loopback, with a FreeIPA-like tree):
the directory's uidNumber, gidNumber and groups become the account's, admin rights and the
allowed groups follow the directory at each login, wrong and unknown credentials and filter
tricks get one answer, no directory account takes over a local one, TLS checks the
certificate, and the admins labspace made still log in when the directory is down."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from labspace.config import Settings
from labspace.errors import NotAuthenticated, RuntimeFailure
from labspace.identity.authenticator import build_authenticator, login
from labspace.identity.ldap import LdapConfig, LdapDirectory
from labspace.identity.users import UserService
from labspace.state.db import Database
from labspace.testing.slapd import Slapd
from labspace.testing.stack import free_port

WRONG = "wrong user name or password"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(tmp_path_factory.mktemp("slapd")).start()
    server.add_user("alice", "alice-directory-pw", 54321, 6000)
    server.add_user("bob", "bob-directory-pw", 54322, None)  # gidNumber = uidNumber
    server.add_user("dave", "dave-directory-pw", 54324, 6000)
    server.add_user("eve", "eve-directory-pw", 10000, 6000)  # the first local uid
    server.add_group("phd", 6001, ["alice"])
    server.add_group("admins", None, ["alice"])
    server.add_group("students", 6002, ["bob", "dave", "eve"])
    try:
        yield server
    finally:
        server.close()


def settings_for(slapd: Slapd, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data", "auth": "ldap", "ldap_url": slapd.url,
        "ldap_preset": "freeipa", "ldap_base_dn": slapd.base, "ldap_bind_dn": slapd.manager,
        "ldap_bind_password": slapd.manager_password, "ldap_admin_groups": ["admins"]}
    return Settings(**{**values, **overrides})


@dataclasses.dataclass
class Accounts:
    users: UserService
    settings: Settings

    async def login(self, name: str, password: str) -> Any:
        return await login(build_authenticator(self.settings, self.users), self.users, name,
                           password)


@pytest_asyncio.fixture(loop_scope="session")
async def accounts(slapd: Slapd, tmp_path: Path) -> AsyncIterator[Accounts]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
    await db.migrate()
    users = UserService(db)
    await users.create("boss", password="corner-office-key", is_admin=True)  # uid 10000
    try:
        yield Accounts(users, settings_for(slapd, tmp_path))
    finally:
        await db.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_directory_user_gets_the_directorys_ids_groups_and_rights(
        accounts: Accounts) -> None:
    user = await accounts.login("Alice", "alice-directory-pw")
    assert (user.name, user.uid, user.gid, user.source) == ("alice", 54321, 6000, "ldap")
    assert user.groups == [{"name": "admins", "gid": None}, {"name": "phd", "gid": 6001}]
    assert user.is_admin and user.password_hash is None
    bob = await accounts.login("bob", "bob-directory-pw")
    assert (bob.uid, bob.gid, bob.is_admin) == (54322, 54322, False)


@pytest.mark.parametrize(("name", "password"), [
    ("alice", "not-her-password"), ("nobody", "alice-directory-pw"), ("alice", ""),
    ("*", "alice-directory-pw"), ("alice)(uid=*", "alice-directory-pw"),
    ("alice*", "alice-directory-pw"), ("alice\\00", "alice-directory-pw"),
    ("uid=alice,cn=users,cn=accounts,dc=lab,dc=test", "alice-directory-pw"),
])
@pytest.mark.asyncio(loop_scope="session")
async def test_wrong_and_unknown_credentials_and_filter_tricks_get_one_answer(
        accounts: Accounts, name: str, password: str) -> None:
    with pytest.raises(NotAuthenticated, match=WRONG):
        await accounts.login(name, password)


@pytest.mark.asyncio(loop_scope="session")
async def test_rights_and_groups_follow_the_directory_at_each_login(
        accounts: Accounts, slapd: Slapd) -> None:
    assert (await accounts.login("alice", "alice-directory-pw")).is_admin
    slapd.set_member("admins", "alice", False)
    try:
        user = await accounts.login("alice", "alice-directory-pw")
        assert not user.is_admin
        assert [group["name"] for group in user.groups] == ["phd"]
    finally:
        slapd.set_member("admins", "alice", True)


@pytest.mark.asyncio(loop_scope="session")
async def test_only_members_of_the_allowed_groups_log_in(accounts: Accounts,
                                                        tmp_path: Path, slapd: Slapd) -> None:
    only_phd = dataclasses.replace(accounts, settings=settings_for(
        slapd, tmp_path, ldap_allowed_groups=["PhD"]))
    assert (await only_phd.login("alice", "alice-directory-pw")).name == "alice"
    with pytest.raises(NotAuthenticated, match=WRONG):
        await only_phd.login("bob", "bob-directory-pw")


@pytest.mark.asyncio(loop_scope="session")
async def test_no_directory_account_takes_over_a_local_account_or_its_uid(
        accounts: Accounts) -> None:
    await accounts.users.create("dave", password="stale-fallback-key-1")
    with pytest.raises(NotAuthenticated, match="cannot be used here"):
        await accounts.login("dave", "dave-directory-pw")
    assert (await accounts.users.get("dave")).source == "local"
    with pytest.raises(NotAuthenticated, match="cannot be used here"):  # uid 10000 is boss's
        await accounts.login("eve", "eve-directory-pw")
    assert (await accounts.users.get("boss")).uid == 10000


@pytest.mark.asyncio(loop_scope="session")
async def test_local_accounts_allocate_their_uids_clear_of_the_directorys(
        accounts: Accounts) -> None:
    await accounts.login("alice", "alice-directory-pw")  # uid 54321
    local = await accounts.users.create("frank")
    assert 10000 < local.uid < 54321


@pytest.mark.asyncio(loop_scope="session")
async def test_the_admins_labspace_made_log_in_when_the_directory_is_down(
        accounts: Accounts, tmp_path: Path, slapd: Slapd) -> None:
    down = dataclasses.replace(accounts, settings=settings_for(
        slapd, tmp_path, ldap_url=f"ldap://127.0.0.1:{free_port()}"))
    assert (await down.login("boss", "corner-office-key")).is_admin
    with pytest.raises(RuntimeFailure, match="did not answer"):
        await down.login("alice", "alice-directory-pw")


def _directory(slapd: Slapd, **changes: Any) -> LdapDirectory:
    settings = Settings(ldap_url=slapd.url, ldap_preset="freeipa", ldap_base_dn=slapd.base,
                        ldap_bind_dn=slapd.manager, ldap_bind_password=slapd.manager_password)
    return LdapDirectory(dataclasses.replace(LdapConfig.from_settings(settings), **changes))


def test_starttls_and_ldaps_check_the_certificate(slapd: Slapd) -> None:
    ca = str(slapd.ca_file)
    assert _directory(slapd, start_tls=True, ca_file=ca).find("alice", "alice-directory-pw")
    assert _directory(slapd, url=slapd.ldaps_url, ca_file=ca).find("bob", "bob-directory-pw")
    for untrusted in ({"start_tls": True}, {"url": slapd.ldaps_url}):  # the system's CAs
        with pytest.raises(RuntimeFailure, match="CERTIFICATE_VERIFY_FAILED"):
            _directory(slapd, **untrusted).find("alice", "alice-directory-pw")


def test_a_wrong_search_account_is_an_error_not_a_wrong_password(slapd: Slapd) -> None:
    with pytest.raises(RuntimeFailure, match="search account"):
        _directory(slapd, bind_password="not-it").find("alice", "alice-directory-pw")
