"""The admin's users page, /hub/admin/users: search and filters (name, group, role, state,
workshop), 50 a page, and one action on the ticked accounts (web/userbulk.py).

Deleting goes through a page that lists the accounts and, when their homes go too, asks for
"delete N homes" typed out. New one-time passwords are shown once, on the result page, never
in a URL. The filter travels in the forms as its query string, rebuilt from the known fields
only, so every way back lands on the same list."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from labspace.errors import InvalidInput
from labspace.identity.usersearch import ROLES, STATES, UserFilter
from labspace.web.deps import AdminDep, Caller, HubDep
from labspace.web.pages import render_page
from labspace.web.recorder import AuditDep
from labspace.web.schemas import BulkOutcome
from labspace.web.userbulk import ACTIONS, MAX_NAMES, Action, delete_phrase, run_bulk, unique_names

router = APIRouter(prefix="/hub/admin/users", include_in_schema=False)

PER_PAGE = 50
FILTERS = ("q", "group", "role", "state", "workshop")
LABELS = {"disable": "Disable", "enable": "Enable", "reset": "Reset passwords",
          "delete": "Delete"}


def _filter_of(values: dict[str, str]) -> dict[str, str]:
    """The known, non-empty filter fields, bounded; an unknown role or state is dropped."""
    kept = {key: values.get(key, "").strip()[:100] for key in FILTERS}
    if kept["role"] not in ROLES:
        kept["role"] = ""
    if kept["state"] not in STATES:
        kept["state"] = ""
    return {key: value for key, value in kept.items() if value}


def _back(query: str) -> tuple[str, dict[str, str]]:
    """A list's address from a form's ``back`` (its query string), rebuilt from the filter
    fields and the page number only."""
    parsed = {key: values[0] for key, values in parse_qs(query[:2000]).items() if values}
    kept = _filter_of(parsed)
    page = parsed.get("page", "")
    if page.isdigit() and 1 < int(page) <= 10**6:
        kept["page"] = page
    return "/hub/admin/users" + (f"?{urlencode(kept)}" if kept else ""), kept


@router.get("")
async def users_page(
    request: Request, caller: AdminDep, hub: HubDep,
    q: Annotated[str, Query(max_length=100)] = "",
    group: Annotated[str, Query(max_length=100)] = "",
    role: Annotated[str, Query(max_length=20)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    workshop: Annotated[str, Query(max_length=30)] = "",
    page: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> Response:
    chosen = _filter_of({"q": q, "group": group, "role": role, "state": state,
                         "workshop": workshop})
    found = await hub.users.search(UserFilter(**chosen), limit=PER_PAGE,
                                   offset=(page - 1) * PER_PAGE)
    first = (page - 1) * PER_PAGE + 1
    last = first + len(found.users) - 1

    def page_url(number: int) -> str:
        return "/hub/admin/users?" + urlencode({**chosen, "page": number})

    return render_page(
        request, "users.html", caller, users=found.users, total=found.total, first=first,
        last=last, filter=chosen, roles=ROLES, states=STATES, actions=ACTIONS, labels=LABELS,
        back=urlencode({**chosen, **({"page": page} if page > 1 else {})}),
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if last < found.total else None,
    )


@router.post("/bulk")
async def users_bulk(
    request: Request, caller: AdminDep, hub: HubDep, audit: AuditDep,
    action: Annotated[str, Form(max_length=20)] = "",
    names: Annotated[list[str] | None, Form()] = None,
    back: Annotated[str, Form(max_length=2000)] = "",
    confirmed: Annotated[bool, Form()] = False,
    delete_home: Annotated[bool, Form()] = False,
    confirm: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    listed, _ = _back(back)
    chosen = unique_names(names or [])
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}")
    if not chosen:
        raise InvalidInput("tick at least one account first")
    if len(chosen) > MAX_NAMES or any(len(name) > 30 for name in chosen):
        raise InvalidInput(f"at most {MAX_NAMES} accounts at once")
    verb: Action = action  # checked above
    if verb == "delete" and not confirmed:
        return _confirm_page(request, caller, chosen, back)
    try:
        outcomes = await run_bulk(hub, verb, chosen, by=caller.name, address=audit.address,
                                  delete_home=delete_home, confirm=confirm)
    except InvalidInput as error:  # the wrong confirmation: nothing was done
        return _confirm_page(request, caller, chosen, back, status=error.http_status,
                             error=error.message, delete_home=delete_home)
    if verb in ("disable", "enable") and all(outcome.ok for outcome in outcomes):
        return RedirectResponse(listed, status_code=303)
    return _result_page(request, caller, verb, outcomes, back, listed)


def _confirm_page(request: Request, caller: Caller, names: list[str], back: str, *,
                  status: int = 200, error: str | None = None,
                  delete_home: bool = False) -> Response:
    return render_page(request, "users-bulk.html", caller, status, step="confirm",
                       names=names, back=back, listed=_back(back)[0], error=error,
                       phrase=delete_phrase(len(names)), delete_home=delete_home)


def _result_page(request: Request, caller: Caller, action: Action,
                 outcomes: list[BulkOutcome], back: str, listed: str) -> Response:
    context: dict[str, Any] = {"step": "result", "action": action, "label": LABELS[action],
                               "outcomes": outcomes, "back": back, "listed": listed,
                               "done": sum(outcome.ok for outcome in outcomes)}
    return render_page(request, "users-bulk.html", caller, **context)


__all__ = ["router"]
