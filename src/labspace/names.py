"""Validation of the names people choose: users, workspaces, templates.

Names appear in URLs, container names, home paths and Unix account names, so one rule
serves them all: lowercase letters, digits and dashes, 1-30 characters, starting with a
letter and not ending with a dash.
"""

from __future__ import annotations

import re

from labspace.errors import InvalidInput

NAME_PATTERN = r"^[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)

# Unix account names a user must not take inside a workspace image.
RESERVED_USER_NAMES = frozenset(
    {"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
     "proxy", "backup", "list", "irc", "nobody", "sudo", "hub", "labspace", "www-data",
     "systemd-network", "messagebus", "sshd", "staff", "users", "api", "user"}
)


def validate_name(value: str, *, kind: str = "name") -> str:
    """Return ``value`` if it is a valid name, else raise InvalidInput saying why."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid {kind} {value!r}: use 1-30 lowercase letters, digits and dashes, "
            "starting with a letter and not ending with a dash"
        )
    return value


def validate_user_name(value: str) -> str:
    validate_name(value, kind="user name")
    if value in RESERVED_USER_NAMES:
        raise InvalidInput(f"the user name {value!r} is reserved")
    return value
