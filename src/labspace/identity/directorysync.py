"""Offboarding from the directory: who left it, or left the allowed groups, since their last
login. The hub asks on an interval (``ldap_sync_interval``) and disables each one, which ends
their sessions, tokens and open connections and stops their workspaces (Hub.offboard); homes
are kept. Re-enabling is an admin's decision: a person who comes back is not let in by this.

A directory that does not answer changes nothing, and neither does a sweep in which too many
people vanish at once (a wrong base DN, a search account that lost its rights): that is
logged as an error for an admin to look at, never a lab locked out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from labspace.identity.ldap import LdapDirectory
from labspace.identity.users import DIRECTORY, UserService

log = logging.getLogger(__name__)

# More than this share of the directory's accounts gone in one sweep (and more than
# MIN_SUSPICIOUS of them) looks like a broken search, not people leaving.
MAX_VANISHED_SHARE = 0.25
MIN_SUSPICIOUS = 3


@dataclass(frozen=True)
class Sweep:
    checked: int
    gone: tuple[str, ...]  # to be offboarded
    held_back: bool = False  # too many at once: nothing done


async def sweep(directory: LdapDirectory, users: UserService,
                allowed_groups: frozenset[str]) -> Sweep:
    """The enabled directory accounts that the directory no longer has, or no longer lets
    in. DirectoryUnavailable (a RuntimeFailure) when it cannot be asked."""
    names = [user.name for user in await users.list()
             if user.source == DIRECTORY and not user.disabled]
    gone: list[str] = []
    entries = await asyncio.to_thread(directory.lookup, names)  # one connection for all
    for name in names:
        found = entries[name]
        allowed = found is not None and (
            not allowed_groups or bool({g.name for g in found.groups} & allowed_groups))
        if not allowed:
            gone.append(name)
    if len(gone) > max(MIN_SUSPICIOUS, MAX_VANISHED_SHARE * len(names)):
        log.error("the directory no longer finds %d of %d accounts (%s...): nobody is "
                  "disabled; check ldap_user_base, ldap_user_filter and the search account",
                  len(gone), len(names), ", ".join(gone[:5]))
        return Sweep(len(names), tuple(gone), held_back=True)
    return Sweep(len(names), tuple(gone))
