"""Logging in against the lab's directory (FreeIPA, Active Directory, OpenLDAP), with ldap3.

Search, then bind: the service account (or an anonymous connection) finds exactly one entry
for the login name, whose value is escaped into the filter (RFC 4515), then a second
connection binds as that entry with the password given. An empty password is refused before
anything is sent: many servers take a bind with a DN and no password as an anonymous bind
that succeeds (RFC 4513 5.1.2). TLS (ldaps:// or StartTLS) always checks the server's
certificate, against ``ldap_ca_file`` or the system's CAs.

What the entry says is what labspace uses: uidNumber and gidNumber (the gid is its own
number, never assumed to be the uid), and the groups the group filter finds, with their
gidNumbers. ldap3 is synchronous: the hub calls ``find`` in a worker thread.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from labspace.config import Settings
from labspace.errors import RuntimeFailure

log = logging.getLogger(__name__)

TIMEOUT_S = 10
MAX_GROUPS = 200


class DirectoryUnavailable(RuntimeFailure):
    """The directory did not answer, or refused the service account."""


@dataclass(frozen=True)
class Preset:
    user_base: str  # below {base}
    user_filter: str
    group_base: str
    group_filter: str
    name_attribute: str


PRESETS = {
    "freeipa": Preset("cn=users,cn=accounts,{base}",
                      "(&(objectClass=posixAccount)(uid={username}))",
                      "cn=groups,cn=accounts,{base}",
                      "(&(objectClass=groupOfNames)(member={dn}))", "uid"),
    "openldap": Preset("ou=people,{base}", "(&(objectClass=posixAccount)(uid={username}))",
                       "ou=groups,{base}", "(|(member={dn})(memberUid={username}))", "uid"),
    "active-directory": Preset("{base}", "(&(objectClass=user)(sAMAccountName={username}))",
                               "{base}", "(&(objectClass=group)(member={dn}))",
                               "sAMAccountName"),
}


@dataclass(frozen=True)
class DirectoryGroup:
    name: str
    gid: int | None


@dataclass(frozen=True)
class DirectoryUser:
    name: str
    dn: str
    uid: int | None  # uidNumber, where the entry has one
    gid: int | None  # gidNumber
    groups: tuple[DirectoryGroup, ...]


@dataclass(frozen=True)
class LdapConfig:
    url: str
    user_base: str
    user_filter: str
    group_base: str
    group_filter: str
    name_attribute: str
    bind_dn: str = ""
    bind_password: str = ""
    start_tls: bool = False
    ca_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LdapConfig:
        preset = PRESETS[settings.ldap_preset]
        base = settings.ldap_base_dn
        return cls(
            url=settings.ldap_url,
            user_base=settings.ldap_user_base or preset.user_base.format(base=base),
            user_filter=settings.ldap_user_filter or preset.user_filter,
            group_base=settings.ldap_group_base or preset.group_base.format(base=base),
            group_filter=settings.ldap_group_filter or preset.group_filter,
            name_attribute=preset.name_attribute,
            bind_dn=settings.ldap_bind_dn, bind_password=settings.ldap_bind_password,
            start_tls=settings.ldap_start_tls,
            ca_file=str(settings.ldap_ca_file) if settings.ldap_ca_file else None)


class LdapDirectory:
    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file,
                  version=ssl.PROTOCOL_TLS_CLIENT)
        self.server = Server(config.url, use_ssl=config.url.lower().startswith("ldaps://"),
                             tls=tls, get_info=NONE, connect_timeout=TIMEOUT_S)

    def find(self, username: str, password: str) -> DirectoryUser | None:
        """The directory's entry for these credentials, or None (no such user, or the wrong
        password). DirectoryUnavailable when the directory cannot be asked."""
        if not username or not password:
            return None
        return self._entry(username, password)

    def lookup(self, usernames: list[str]) -> dict[str, DirectoryUser | None]:
        """The directory's entries for these names, without passwords (the periodic check
        that accounts are still there), over one connection; None for a name that is gone."""
        with self._service() as service:
            return {name: self._entry_on(service, name, None) if name else None
                    for name in usernames}

    def _entry(self, username: str, password: str) -> DirectoryUser | None:
        with self._service() as service:
            return self._entry_on(service, username, password)

    @contextmanager
    def _service(self) -> Iterator[Connection]:
        """A connection bound as the search account, closed after; LDAP errors become
        DirectoryUnavailable."""
        service = self._connect(self.config.bind_dn, self.config.bind_password)
        try:
            yield service
        except LDAPException as error:
            raise DirectoryUnavailable(f"the directory did not answer: {error}") from error
        finally:
            service.unbind()

    def _entry_on(self, service: Connection, username: str,
                  password: str | None) -> DirectoryUser | None:
        entry = self._user_entry(service, username)
        if entry is None:
            return None
        if password is not None and not self._password_ok(entry["dn"], password):
            return None
        return DirectoryUser(
            name=_first(entry, self.config.name_attribute) or username,
            dn=entry["dn"], uid=_number(entry, "uidNumber"), gid=_number(entry, "gidNumber"),
            groups=self._groups(service, entry["dn"], username))

    def _open(self, user: str = "", password: str = "") -> Connection:
        """An open connection (StartTLS done as configured), not bound yet."""
        try:
            connection = Connection(self.server, user=user or None, password=password or None,
                                    receive_timeout=TIMEOUT_S, raise_exceptions=False)
            connection.open()
            if self.config.start_tls and not connection.start_tls():
                raise DirectoryUnavailable("the directory refused StartTLS")
        except LDAPException as error:
            raise DirectoryUnavailable(f"cannot reach the directory: {error}") from error
        return connection

    def _connect(self, user: str, password: str) -> Connection:
        """A connection bound as the search account (anonymous when it has no DN)."""
        connection = self._open(user, password)
        try:
            bound = not user or connection.bind()
        except LDAPException as error:
            raise DirectoryUnavailable(f"cannot reach the directory: {error}") from error
        if not bound:
            connection.unbind()
            raise DirectoryUnavailable("the directory refused labspace's search account "
                                       "(ldap_bind_dn, ldap_bind_password)")
        return connection

    def _user_entry(self, connection: Connection, username: str) -> dict[str, Any] | None:
        query = self.config.user_filter.format(username=escape_filter_chars(username))
        attributes = [self.config.name_attribute, "uidNumber", "gidNumber"]
        connection.search(self.config.user_base, query, SUBTREE, attributes=attributes,
                          size_limit=2)
        found = [entry for entry in connection.response or ()
                 if entry.get("type") == "searchResEntry"]
        if len(found) != 1:  # none, or ambiguous: never pick one of two
            return None
        entry: dict[str, Any] = found[0]
        return entry

    def _password_ok(self, dn: str, password: str) -> bool:
        connection = self._open(dn, password)
        try:
            return bool(connection.bind())
        finally:
            connection.unbind()

    def _groups(self, connection: Connection, dn: str,
                username: str) -> tuple[DirectoryGroup, ...]:
        query = self.config.group_filter.format(dn=escape_filter_chars(dn),
                                                username=escape_filter_chars(username))
        connection.search(self.config.group_base, query, SUBTREE,
                          attributes=["cn", "gidNumber"], size_limit=MAX_GROUPS)
        groups = {(_first(entry, "cn") or "").lower(): _number(entry, "gidNumber")
                  for entry in connection.response or ()
                  if entry.get("type") == "searchResEntry"}
        return tuple(DirectoryGroup(name, gid) for name, gid in sorted(groups.items()) if name)


def _first(entry: dict[str, Any], attribute: str) -> str | None:
    value = entry.get("attributes", {}).get(attribute)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def _number(entry: dict[str, Any], attribute: str) -> int | None:
    value = _first(entry, attribute)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
