"""One action on many accounts at once (the users page's buttons, POST /hub/api/users/bulk,
``labspace user disable a b c``): disable, enable, reset (a new one-time password) or delete.

Each name succeeds or fails on its own: a name that is unknown, the caller's own, or a
directory account asked for a password reset is reported and the others go on. They run one
after another: each may stop or remove containers, and a batch of 500 must not put 500
operations on the engine at once. Deleting homes as well needs the typed confirmation
``delete N homes`` (N: how many accounts), which names what is destroyed.
"""

from __future__ import annotations

from typing import Literal

from labspace.errors import InvalidInput, LabspaceError, PermissionDenied
from labspace.hub import Hub
from labspace.identity.passwords import generate_password
from labspace.identity.users import LOCAL, WORKSHOP
from labspace.web.schemas import BulkOutcome

Action = Literal["disable", "enable", "reset", "delete"]
ACTIONS: tuple[Action, ...] = ("disable", "enable", "reset", "delete")
MAX_NAMES = 500


def delete_phrase(count: int) -> str:
    """What an admin types to delete ``count`` accounts with their homes."""
    return f"delete {count} homes"


def unique_names(names: list[str]) -> list[str]:
    return list(dict.fromkeys(name.strip() for name in names if name.strip()))


async def run_bulk(hub: Hub, action: Action, names: list[str], *, by: str, address: str = "",
                   delete_home: bool = False, confirm: str = "") -> list[BulkOutcome]:
    names = unique_names(names)
    if not 1 <= len(names) <= MAX_NAMES:
        raise InvalidInput(f"give 1 to {MAX_NAMES} user names")
    if action == "delete" and delete_home and " ".join(confirm.split()) != delete_phrase(
            len(names)):
        raise InvalidInput(f"deleting {len(names)} homes with every file in them needs the "
                           f"confirmation \"{delete_phrase(len(names))}\": nothing was deleted")
    outcomes = []
    for name in names:
        try:
            password = await _one(hub, action, name, by=by, address=address,
                                  delete_home=delete_home)
        except LabspaceError as error:
            outcomes.append(BulkOutcome(name=name, ok=False, error=error.message))
        else:
            outcomes.append(BulkOutcome(name=name, ok=True, password=password))
    return outcomes


async def _one(hub: Hub, action: Action, name: str, *, by: str, address: str,
               delete_home: bool) -> str | None:
    if name == by:
        raise PermissionDenied(f"you cannot {action} your own account here")
    if action == "disable":
        await hub.offboard(name, by=by, address=address)
    elif action == "enable":
        await hub.reinstate(name, by=by, address=address)
    elif action == "delete":
        await hub.delete_user(name, by=by, delete_home=delete_home, address=address)
    else:
        user = await hub.users.get(name)
        if user.source not in (LOCAL, WORKSHOP):
            raise InvalidInput(f"{name} logs in through the {user.source} directory or "
                               "provider: its password is set there")
        password = generate_password()
        await hub.users.set_password(name, password, generated=True)
        await hub.audit.record("user.password", actor=by, target=name, address=address,
                               generated=True)
        return password
    return None
