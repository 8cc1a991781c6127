"""Validation of the names people choose: users, workspaces, templates.

Names appear in URLs, container names, home paths and Unix account names, so one rule
serves them all: lowercase letters, digits and dashes, 1-30 characters, starting with a
letter, not ending with a dash, and never two dashes in a row ("--" separates the owner from
the workspace in a workspace's host name: see labspace.origins).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

from labspace.errors import InvalidInput

# Without the "no two dashes" rule, which validate_name adds: pydantic's regex engine has no
# look-ahead.
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
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or "--" in value:
        raise InvalidInput(
            f"invalid {kind} {value!r}: use 1-30 lowercase letters, digits and dashes, "
            "starting with a letter, not ending with a dash, without two dashes in a row"
        )
    return value


def validate_user_name(value: str) -> str:
    validate_name(value, kind="user name")
    if value in RESERVED_USER_NAMES:
        raise InvalidInput(f"the user name {value!r} is reserved")
    return value


def _pydantic_check(validate: Callable[[str], str]) -> AfterValidator:
    """Run a validator above inside pydantic, keeping its clear message."""

    def check(value: str) -> str:
        try:
            return validate(value)
        except InvalidInput as error:
            raise ValueError(error.message) from None

    return AfterValidator(check)


# Field types for API input models: the same rule and message as everywhere else.
Name = Annotated[str, _pydantic_check(validate_name)]
UserName = Annotated[str, _pydantic_check(validate_user_name)]
