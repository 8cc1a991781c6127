"""Share levels of a workspace's ports, and who each one lets in.

Stdlib only: the proxy checks every request to a shared port against these rules.
"""

from __future__ import annotations

from enum import StrEnum


class ShareLevel(StrEnum):
    PRIVATE = "private"  # the workspace's owner only (the default: no share recorded)
    AUTHENTICATED = "authenticated"  # anyone logged in to labspace
    PUBLIC = "public"  # anyone with the link, no login


_RANK = {ShareLevel.PRIVATE: 0, ShareLevel.AUTHENTICATED: 1, ShareLevel.PUBLIC: 2}
LEVELS = tuple(_RANK)


def level_of(value: str | None) -> ShareLevel:
    """A stored level; anything unknown counts as private (the narrowest)."""
    try:
        return ShareLevel(value) if value else ShareLevel.PRIVATE
    except ValueError:
        return ShareLevel.PRIVATE


def wider(level: ShareLevel, than: ShareLevel) -> bool:
    return _RANK[level] > _RANK[than]


def capped(level: ShareLevel, cap: ShareLevel) -> ShareLevel:
    """``level``, lowered to ``cap`` when it is wider."""
    return cap if wider(level, cap) else level


def admits(level: ShareLevel, visitor: str | None, owner: str) -> bool:
    """Whether ``visitor`` (a user name, or None for someone not logged in) may use a port
    of ``owner``'s workspace shared at ``level``."""
    if level is ShareLevel.PUBLIC:
        return True
    if visitor is None:
        return False
    return level is ShareLevel.AUTHENTICATED or visitor == owner
