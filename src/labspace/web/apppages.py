"""The instant apps' page /hub/apps (admins and instructors): every app with its link and its
pool's figures (refreshed in place by static/apps.js from /hub/api/apps), a form to add one,
and drain, refresh and delete for the apps the caller manages.

The same operations as the API (web/apps.py), which checks who may do what and writes the
audit entries; this page adds forms (CSRF- and Origin-checked by InstructorDep's
user_caller) and answers for people.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from labspace.apps.model import ANYONE, USERS, AppDefinition, PoolSettings
from labspace.errors import InvalidInput, LabspaceError
from labspace.web.apps import add_app as api_add
from labspace.web.apps import delete_app as api_delete
from labspace.web.apps import drain_app as api_drain
from labspace.web.apps import list_apps as api_list
from labspace.web.apps import managed_app
from labspace.web.apps import refresh_app as api_refresh
from labspace.web.deps import Caller, HubDep
from labspace.web.pages import NAME_HINT, render_page
from labspace.web.recorder import AuditDep
from labspace.web.workshops import InstructorDep

router = APIRouter(prefix="/hub/apps", include_in_schema=False)

PAGE = "/hub/apps"
MAX_IDLE_MINUTES = 7 * 24 * 60  # PoolSettings.idle_timeout's bound, in minutes
# What a redirect after a change says on the page (?done=...&app=...).
NOTICES = {
    "added": "App {app} added: its spares are starting; the link below hands them out.",
    "drained": "App {app} is draining: no new claims, its spares are gone; claims run on.",
    "refreshed": "App {app} refreshed: fresh spares replace the old ones (a drain ends).",
    "deleted": "App {app} deleted: its claims and spares were ended.",
}
# Form fields as the page names them, for errors.
LABELS = {"name": "Name", "template": "Template", "path": "Path", "access": "Access",
          "spares": "Spares", "max_claimed": "Max claimed", "shareable": "Shareable"}


# -- the claim latency, from the pool's cumulative histogram ----------------------------------


def latency_quantile(histogram: Mapping[str, Any], q: float) -> float | None:
    """The upper bound of the first bucket whose cumulative count reaches ``q`` of all claims
    (``inf``: above every bound); None before the first claim. Prometheus' shape:
    ``{"buckets": [{"le": 0.05, "count": 3}, ..., {"le": "+Inf", "count": n}], "count": n}``."""
    total = histogram.get("count") or 0
    if total <= 0:
        return None
    for bucket in histogram.get("buckets") or []:
        if bucket["count"] >= q * total:
            return math.inf if bucket["le"] == "+Inf" else float(bucket["le"])
    return math.inf


def _seconds(value: float) -> str:
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


def latency_text(histogram: Mapping[str, Any], q: float) -> str:
    """For the page: '≤ 50 ms', '≤ 2.5 s', '> 120 s' (above every bound), '-' (no claims)."""
    found = latency_quantile(histogram, q)
    if found is None:
        return "-"
    if math.isinf(found):
        bounds = [b["le"] for b in histogram.get("buckets") or [] if b["le"] != "+Inf"]
        return f"> {_seconds(float(bounds[-1]))}" if bounds else "-"
    return f"≤ {_seconds(found)}"


# -- the page ---------------------------------------------------------------------------------


def _done(action: str, name: str) -> RedirectResponse:
    return RedirectResponse(f"{PAGE}?{urlencode({'done': action, 'app': name})}",
                            status_code=303)


async def _list(request: Request, caller: Caller, hub: HubDep, *, status: int = 200,
                error: str | None = None, form: dict[str, Any] | None = None,
                notice: str | None = None) -> Response:
    rows = []
    for app in await api_list(caller, hub):
        latency = app.pool["claim_latency_seconds"]
        rows.append({"app": app, "pool": app.pool,
                     "manages": caller.is_admin or app.created_by == caller.name,
                     "p50": latency_text(latency, 0.5), "p99": latency_text(latency, 0.99),
                     "action": f"{PAGE}/{quote(app.name)}"})
    templates = await hub.templates.list()
    return render_page(request, "apps.html", caller, status, rows=rows, templates=templates,
                       error=error, notice=notice, form=form or {}, defaults=PoolSettings(),
                       max_idle_minutes=MAX_IDLE_MINUTES)


@router.get("")
async def apps_page(request: Request, caller: InstructorDep, hub: HubDep,
                    done: str = "", app: str = "") -> Response:
    notice = NOTICES[done].format(app=app[:30]) if done in NOTICES and app else None
    return await _list(request, caller, hub, notice=notice)


def _problem(error: ValidationError) -> str:
    """A ValidationError as the form's fields name it."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][-1]) if item["loc"] else "form"
        if field == "idle_timeout":
            problems.append(f"Idle timeout: 1 to {MAX_IDLE_MINUTES} minutes")
        elif field in ("name", "template") and item["type"] == "string_pattern_mismatch":
            problems.append(f"{LABELS[field]}: {NAME_HINT}")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{LABELS.get(field, field)}: {message}")
    return "; ".join(problems)


def _number(value: str, label: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidInput(f"{label}: a whole number, not {value.strip()[:20]!r}") from None


def _definition(form: dict[str, Any]) -> AppDefinition:
    """The form's app, or InvalidInput saying what is wrong with it."""
    try:
        pool = {"spares": _number(form["spares"], "Spares"),
                "max_claimed": _number(form["max_claimed"], "Max claimed"),
                "idle_timeout": _number(form["idle_minutes"], "Idle timeout") * 60}
        if form["access"] not in (ANYONE, USERS):
            raise InvalidInput(f"Access: {ANYONE} or {USERS}")
        return AppDefinition(name=form["name"], template=form["template"], path=form["path"],
                             access=form["access"], shareable=form["shareable"],
                             pool=PoolSettings(**pool))
    except ValidationError as error:
        raise InvalidInput(_problem(error)) from None


@router.post("")
async def apps_add(
    request: Request, caller: InstructorDep, hub: HubDep, audit: AuditDep,
    name: Annotated[str, Form(max_length=30)] = "",
    template: Annotated[str, Form(max_length=30)] = "",
    path: Annotated[str, Form(max_length=500)] = "",
    spares: Annotated[str, Form(max_length=10)] = "2",
    max_claimed: Annotated[str, Form(max_length=10)] = "100",
    idle_minutes: Annotated[str, Form(max_length=10)] = "20",
    access: Annotated[str, Form(max_length=10)] = ANYONE,
    shareable: Annotated[bool, Form()] = False,
) -> Response:
    form = {"name": name.strip(), "template": template.strip(), "path": path.strip(),
            "spares": spares, "max_claimed": max_claimed, "idle_minutes": idle_minutes,
            "access": access, "shareable": shareable}
    try:
        await api_add(_definition(form), caller, hub, audit)
    except LabspaceError as error:
        status = error.http_status if error.http_status < 500 else 502
        return await _list(request, caller, hub, status=status, error=error.message, form=form)
    return _done("added", name.strip())


@router.post("/{name}/drain")
async def apps_drain(name: str, caller: InstructorDep, hub: HubDep,
                     audit: AuditDep) -> Response:
    await api_drain(name, caller, hub, audit)
    return _done("drained", name)


@router.post("/{name}/refresh")
async def apps_refresh(name: str, caller: InstructorDep, hub: HubDep,
                       audit: AuditDep) -> Response:
    await api_refresh(name, caller, hub, audit)
    return _done("refreshed", name)


@router.post("/{name}/delete")
async def apps_delete(request: Request, name: str, caller: InstructorDep, hub: HubDep,
                      audit: AuditDep,
                      confirm: Annotated[str, Form(max_length=30)] = "") -> Response:
    """Deleting asks for the app's name: it ends every claim (people's open sessions)."""
    await managed_app(hub, caller, name)
    if confirm.strip() != name:
        return await _list(request, caller, hub, status=400,
                           error=f"Type the app's name ({name}) to delete it.")
    await api_delete(name, caller, hub, audit)
    return _done("deleted", name)
