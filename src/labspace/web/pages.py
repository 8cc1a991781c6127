"""Server-rendered pages under /hub/: my workspaces, a workspace's progress, admin, tokens.

Plain HTML forms and one small script (static/progress.js) for the live progress view.
Every page gets ``caller`` and ``csrf``; every POST form carries ``_csrf`` and every POST
handler depends on ``user_caller`` (CallerDep) or ``admin_caller`` (AdminDep), which check it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from labspace.errors import InvalidInput, LabspaceError, NotFound
from labspace.identity.passwords import generate_password
from labspace.identity.tokens import issue_token
from labspace.names import NAME_PATTERN, validate_name
from labspace.policy.allowance import allowed_profiles
from labspace.sharing.levels import LEVELS
from labspace.storage.mounts import homes_mount_problem
from labspace.web import api
from labspace.web.app import templates
from labspace.web.deps import AdminDep, Caller, CallerDep, HubDep, csrf_token, visible_workspace
from labspace.web.login import safe_next
from labspace.web.quotaview import use_rows
from labspace.web.recorder import AuditDep
from labspace.workspaces.culler import IdleView, span
from labspace.workspaces.states import SETTLED, TRANSIENT, State

router = APIRouter(prefix="/hub", include_in_schema=False)

# The HTML pattern attribute is anchored by the browser: drop our ^...$.
HTML_NAME_PATTERN = "(?!.*--)" + NAME_PATTERN.removeprefix("^").removesuffix("$")
NAME_HINT = ("1-30 lowercase letters, digits and dashes, starting with a letter, "
             "not ending with a dash, without two dashes in a row")


# -- rendering helpers -----------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


templates.env.filters["when"] = _when
templates.env.filters["bytes"] = _bytes


def render_page(
    request: Request, view: str, caller: Caller, status: int = 200, **context: Any
) -> Response:
    """A page for a logged-in caller: every one gets ``caller`` and its form's ``csrf``."""
    context.update(caller=caller, csrf=csrf_token(request, caller),
                   name_pattern=HTML_NAME_PATTERN, name_hint=NAME_HINT,
                   instructor=request.app.state.hub.is_instructor(caller.user))
    return templates.TemplateResponse(request, view, context, status_code=status)


def _see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _workspace_path(owner: str, name: str) -> str:
    return f"/hub/workspaces/{quote(owner)}/{quote(name)}"


def _workspace_url(owner: str, name: str) -> str:
    return f"/user/{quote(owner)}/{quote(name)}/"


# -- my workspaces ---------------------------------------------------------------------------


async def _home(
    request: Request, caller: Caller, hub: HubDep, *, status: int = 200,
    error: str | None = None, form: dict[str, str] | None = None,
) -> Response:
    records = await hub.store.list(owner=caller.name)
    specs = await hub.templates.list()
    names = {spec.name: spec.display_name for spec in specs}
    # The form offers only what the caller may start (the start path checks it again), and
    # no template meant for instant apps only.
    allowance = await hub.allowance(caller.name)
    return render_page(
        request, "home.html", caller, status, workspaces=records,
        templates=[spec for spec in specs
                   if spec.workspaces and allowance.template_allowed(spec.name)],
        profiles=allowed_profiles(hub.settings.profiles, allowance),
        template_names=names, error=error, form=form or {}, transient=TRANSIENT,
        quotas=use_rows(await hub.quotas.of_user(caller.name)),
    )


@router.get("/")
async def home(
    request: Request, caller: CallerDep, hub: HubDep, name: str = ""
) -> Response:
    # ?name= pre-fills the form (the proxy's "no such workspace" page links here).
    return await _home(request, caller, hub, form={"name": name[:30]} if name else None)


@router.post("/workspaces")
async def create_workspace(
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    audit: AuditDep,
    name: Annotated[str, Form(max_length=100)] = "",
    template: Annotated[str, Form(max_length=100)] = "",
    profile: Annotated[str | None, Form(max_length=30)] = None,
) -> Response:
    name, template = name.strip(), template.strip()
    try:
        validate_name(name, kind="workspace name")
        try:
            await hub.templates.get(template)
        except NotFound as missing:
            raise InvalidInput(f"there is no template {template!r}") from missing
        await hub.create_workspace(caller.name, name, template, profile)
        try:
            await hub.start_workspace(caller.name, name)
        except LabspaceError:
            await hub.manager.delete(caller.name, name)  # nothing half-created
            raise
    except LabspaceError as error:
        status = error.http_status if error.http_status < 500 else 502
        return await _home(request, caller, hub, status=status, error=error.message,
                           form={"name": name, "template": template,
                                 "profile": profile or ""})
    target = f"{caller.name}/{name}"
    await audit("workspace.create", actor=caller.name, target=target, template=template)
    await audit("workspace.start", actor=caller.name, target=target)
    return _see(_workspace_path(caller.name, name) + "?launch=1")


# -- one workspace ---------------------------------------------------------------------------


@router.get("/workspaces/{owner}/{name}")
async def workspace_page(
    request: Request, owner: str, name: str, caller: CallerDep, hub: HubDep,
    launch: bool = False, port_error: str = "",
) -> Response:
    record = await visible_workspace(hub, caller, owner, name)
    ports = await hub.sharing.ports(record)
    events = await hub.store.events(record.id, limit=50)
    spec_names = {spec.name: spec.display_name for spec in await hub.templates.list()}
    busy = record.state in TRANSIENT or hub.manager.busy(record.id)
    # The steps of the operation under way (or the last one): from the last "queued".
    starts = [i for i, event in enumerate(events) if event.state == State.PENDING]
    steps = events[starts[-1]:] if starts else events[-1:]
    idle = (await hub.idle.views([record])).get(record.id)
    return render_page(
        request, "workspace.html", caller, ws=record, events=events, steps=steps, busy=busy,
        launch=launch, template_name=spec_names.get(record.template, record.template),
        url=_workspace_url(record.owner, record.name),
        page=_workspace_path(record.owner, record.name),
        events_url=f"/hub/api/workspaces/{quote(owner)}/{quote(name)}/events",
        last_event=events[-1].id if events else 0,
        settled=[str(state) for state in SETTLED],
        ports=ports, port_error=port_error[:300], levels=[level.value for level in LEVELS],
        idle=idle, idle_stop=_idle_stop(idle), gpus=hub.gpus.held_by(record.id),
    )


def _idle_stop(idle: IdleView | None) -> tuple[datetime, str] | None:
    """When it stops unused, and how long that leaves ('7h 12m'), for the page."""
    if idle is None or idle.stop_at is None:
        return None
    return datetime.fromtimestamp(idle.stop_at, UTC), span(idle.stop_at - time.time())


@router.post("/workspaces/{owner}/{name}/start")
async def start_workspace(owner: str, name: str, caller: CallerDep, hub: HubDep,
                          audit: AuditDep) -> Response:
    await visible_workspace(hub, caller, owner, name)
    await hub.start_workspace(owner, name, by_admin=owner != caller.name)
    await audit("workspace.start", actor=caller.name, target=f"{owner}/{name}")
    return _see(_workspace_path(owner, name) + "?launch=1")


@router.post("/workspaces/{owner}/{name}/stop")
async def stop_workspace(
    owner: str, name: str, caller: CallerDep, hub: HubDep, audit: AuditDep,
    next: Annotated[str, Form()] = "",
) -> Response:
    await visible_workspace(hub, caller, owner, name)
    await hub.manager.stop(owner, name)
    await audit("workspace.stop", actor=caller.name, target=f"{owner}/{name}")
    return _see(safe_next(next) if next else _workspace_path(owner, name))


@router.post("/workspaces/{owner}/{name}/delete")
async def delete_workspace(
    owner: str, name: str, caller: CallerDep, hub: HubDep, audit: AuditDep,
    next: Annotated[str, Form()] = "",
) -> Response:
    await visible_workspace(hub, caller, owner, name)
    await hub.manager.delete(owner, name)
    await audit("workspace.delete", actor=caller.name, target=f"{owner}/{name}")
    return _see(safe_next(next))


# -- API tokens ------------------------------------------------------------------------------


@router.get("/token")
async def token_page(request: Request, caller: CallerDep) -> Response:
    return render_page(request, "token.html", caller, token=None, note="")


@router.post("/token")
async def token_create(
    request: Request, caller: CallerDep, hub: HubDep, audit: AuditDep,
    note: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    async with hub.db.session() as session:
        token = await issue_token(session, caller.user, kind="api", note=note.strip())
    await audit("token.create", actor=caller.name, target=caller.name, note=note.strip())
    return render_page(request, "token.html", caller, token=token, note=note.strip(),
                   hub_url=(hub.settings.public_url or str(request.base_url)).rstrip("/"))


# -- administration --------------------------------------------------------------------------


async def _admin(
    request: Request, caller: Caller, hub: HubDep, *, status: int = 200,
    error: str | None = None, created: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    found = await hub.users.search(limit=20)  # the first 20; everyone: /hub/admin/users
    specs = await hub.templates.list()
    records = await hub.store.list()
    rows = list(zip(await api.workspace_usage(hub, records), records, strict=True))
    # Checked on each visit (one statvfs, off the event loop): a fixed mount clears it at once.
    homes_warning = await asyncio.to_thread(homes_mount_problem, hub.settings.homes)
    return render_page(
        request, "admin.html", caller, status, users=found.users, users_total=found.total,
        templates=specs, rows=rows, error=error, created=created, form=form or {},
        homes_warning=homes_warning,
    )


@router.get("/admin")
async def admin_page(request: Request, caller: AdminDep, hub: HubDep) -> Response:
    return await _admin(request, caller, hub)


@router.post("/admin/users")
async def admin_add_user(
    request: Request, caller: AdminDep, hub: HubDep, audit: AuditDep,
    name: Annotated[str, Form(max_length=100)] = "",
    admin: Annotated[bool, Form()] = False,
) -> Response:
    name = name.strip()
    password = generate_password()
    try:
        await hub.users.create(name, password=password, is_admin=admin, generated=True)
    except LabspaceError as error:
        return await _admin(request, caller, hub, status=error.http_status, error=error.message,
                            form={"name": name, "admin": admin})
    await audit("user.create", actor=caller.name, target=name, admin=admin)
    return await _admin(request, caller, hub, created={"name": name, "password": password})


@router.post("/admin/users/{name}/disable")
async def admin_disable_user(name: str, caller: AdminDep, hub: HubDep,
                             audit: AuditDep) -> Response:
    await hub.offboard(name, by=caller.name, address=audit.address)
    return _see("/hub/admin")


@router.post("/admin/users/{name}/enable")
async def admin_enable_user(name: str, caller: AdminDep, hub: HubDep,
                            audit: AuditDep) -> Response:
    await hub.reinstate(name, by=caller.name, address=audit.address)
    return _see("/hub/admin")


@router.get("/admin/templates/{name}")
async def admin_template(request: Request, name: str, caller: AdminDep, hub: HubDep) -> Response:
    spec = await hub.templates.get(name)
    return render_page(request, "template.html", caller, spec=spec,
                   spec_json=spec.model_dump_json(indent=2))

