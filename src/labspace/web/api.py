"""The REST API under /hub/api/ (OpenAPI at /hub/api/openapi.json)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import delete, select

from labspace import __version__
from labspace.errors import InvalidInput, LabspaceError, NotFound, PermissionDenied, QuotaExceeded
from labspace.hub import Hub
from labspace.identity.passwords import generate_password
from labspace.identity.tokens import digest, issue_token
from labspace.identity.usersearch import UserFilter
from labspace.policy.allowance import allowed_profiles
from labspace.state.models import MAX_ID, Token
from labspace.templates import TemplateSpec
from labspace.templates.store import parse_template
from labspace.web.deps import AdminDep, CallerDep, HubDep, visible_workspace
from labspace.web.recorder import AuditDep
from labspace.web.schemas import (
    BulkOutcome,
    DirectorySync,
    PasswordReset,
    PasswordSet,
    ProfilePublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserBulk,
    UserCreate,
    UserCreated,
    UserDeleted,
    UserPublic,
    UserUpdate,
    WorkspaceCreate,
    WorkspacePublic,
    WorkspaceUsage,
)
from labspace.web.streams import follow_events
from labspace.web.userbulk import run_bulk
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord

router = APIRouter(prefix="/hub/api")


@router.get("/", summary="Version and health")
async def root() -> dict[str, str]:
    return {"labspace": __version__}


@router.get("/me", response_model=UserPublic)
async def me(caller: CallerDep) -> UserPublic:
    return UserPublic.of(caller.user)


# -- tokens ------------------------------------------------------------------------------


@router.post("/tokens", response_model=TokenCreated, status_code=201)
async def create_token(body: TokenCreate, caller: CallerDep, hub: HubDep,
                       audit: AuditDep) -> TokenCreated:
    async with hub.db.session() as session:
        token = await issue_token(session, caller.user, kind="api", note=body.note)
    await audit("token.create", actor=caller.name, target=caller.name, note=body.note)
    return TokenCreated(token=token, note=body.note)


@router.get("/tokens", response_model=list[TokenPublic])
async def list_tokens(caller: CallerDep, hub: HubDep) -> list[TokenPublic]:
    """The caller's sessions and API tokens."""
    mine = digest(caller.credential)
    async with hub.db.session() as session:
        rows = await session.scalars(
            select(Token).where(Token.user_id == caller.user.id).order_by(Token.id)
        )
        return [TokenPublic(id=t.id, kind=t.kind, note=t.note, created_at=t.created_at,
                            expires_at=t.expires_at, current=t.digest == mine) for t in rows]


@router.delete("/tokens/{token_id:int}", status_code=204)
async def revoke_token_by_id(
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)], caller: CallerDep, hub: HubDep,
    audit: AuditDep,
) -> Response:
    """Revoke one of the caller's tokens or sessions (e.g. a lost laptop's)."""
    async with hub.db.session() as session:
        revoked = (await session.scalars(
            delete(Token).where(Token.id == token_id, Token.user_id == caller.user.id)
            .returning(Token.digest)
        )).all()
    if not revoked:
        raise NotFound(f"you have no token {token_id}")
    await hub.proxy.revoked(digests=revoked)  # its open connections end now
    await audit("token.revoke", actor=caller.name, target=caller.name, token=token_id)
    return Response(status_code=204)


@router.delete("/tokens/current", status_code=204)
async def revoke_current_token(caller: CallerDep, hub: HubDep, audit: AuditDep) -> Response:
    async with hub.db.session() as session:
        await session.execute(delete(Token).where(Token.digest == digest(caller.credential)))
    await hub.proxy.revoked(digests=[digest(caller.credential)])
    await audit("token.revoke", actor=caller.name, target=caller.name, token="current")
    return Response(status_code=204)


# -- users (admin) -------------------------------------------------------------------------


@router.get("/users", response_model=list[UserPublic])
async def list_users(
    _: AdminDep, hub: HubDep, response: Response,
    q: Annotated[str, Query(max_length=100, description="A part of the name.")] = "",
    group: Annotated[str, Query(max_length=100, description="Members of this group.")] = "",
    role: Annotated[Literal["admin", "instructor", "member", ""], Query()] = "",
    state: Annotated[Literal["enabled", "disabled", ""], Query()] = "",
    source: Annotated[str, Query(max_length=20, description="local, ldap, oidc or "
                                 "workshop.")] = "",
    workshop: Annotated[str, Query(max_length=30, description="A workshop's attendees.")] = "",
    limit: Annotated[int | None, Query(ge=1, le=500, description="At most this many "
                                       "(default: all).")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[UserPublic]:
    """The accounts, by name; the header X-Total-Count says how many match in all."""
    where = UserFilter(q=q, group=group, role=role, state=state, source=source,
                       workshop=workshop)
    page = await hub.users.search(where, limit=limit or 500, offset=offset)
    users = page.users
    while limit is None and offset + len(users) < page.total:  # everyone, 500 at a time
        more = await hub.users.search(where, limit=500, offset=offset + len(users))
        if not more.users:
            break
        users += more.users
    response.headers["X-Total-Count"] = str(page.total)
    return [UserPublic.of(user) for user in users]


@router.post("/users/bulk", response_model=list[BulkOutcome])
async def bulk_users(body: UserBulk, caller: AdminDep, hub: HubDep,
                     audit: AuditDep) -> list[BulkOutcome]:
    """Disable, enable, reset (a one-time password each, local and workshop accounts) or
    delete many accounts; each name succeeds or fails on its own (the caller's own fails).
    Deleting the homes too needs confirm = "delete N homes", N the number of names."""
    return await run_bulk(hub, body.action, body.names, by=caller.name, address=audit.address,
                          delete_home=body.delete_home, confirm=body.confirm)


@router.get("/users/{name}", response_model=UserPublic)
async def get_user(name: str, _: AdminDep, hub: HubDep) -> UserPublic:
    return UserPublic.of(await hub.users.get(name))


@router.patch("/users/{name}", response_model=UserPublic)
async def update_user(name: str, body: UserUpdate, caller: AdminDep, hub: HubDep,
                      audit: AuditDep) -> UserPublic:
    """Set an account's role (member, instructor) or a local account's groups; what the
    groups allow (access rules, folders) applies at the next start."""
    groups = None if body.groups is None else [entry.model_dump() for entry in body.groups]
    user = await hub.users.update(name, role=body.role, groups=groups)
    if body.role is not None:
        await audit("user.role", actor=caller.name, target=name, role=body.role)
    if groups is not None:
        await audit("user.groups", actor=caller.name, target=name,
                    groups=[entry["name"] for entry in groups])
    return UserPublic.of(user)


@router.post("/users", response_model=UserCreated, status_code=201)
async def create_user(body: UserCreate, caller: AdminDep, hub: HubDep,
                      audit: AuditDep) -> UserCreated:
    password = body.password or generate_password()
    user = await hub.users.create(body.name, password=password, is_admin=body.admin,
                                  generated=not body.password)
    await audit("user.create", actor=caller.name, target=user.name, admin=body.admin)
    return UserCreated(
        **UserPublic.of(user).model_dump(), password=None if body.password else password
    )


@router.post("/users/{name}/disable", response_model=UserPublic)
async def disable_user(name: str, caller: AdminDep, hub: HubDep,
                       audit: AuditDep) -> UserPublic:
    return UserPublic.of(await hub.offboard(name, by=caller.name, address=audit.address))


@router.post("/users/{name}/password", response_model=PasswordSet)
async def reset_password(
    name: str, body: PasswordReset, caller: AdminDep, hub: HubDep, audit: AuditDep
) -> PasswordSet:
    """Set a user's password, or generate a one-time password when none is given."""
    password = body.password or generate_password()
    await hub.users.set_password(name, password, generated=not body.password)
    await audit("user.password", actor=caller.name, target=name,
                generated=not body.password)
    return PasswordSet(name=name, password=None if body.password else password)


@router.post("/users/{name}/tokens", response_model=TokenCreated, status_code=201)
async def create_user_token(
    name: str, body: TokenCreate, caller: AdminDep, hub: HubDep, audit: AuditDep
) -> TokenCreated:
    """Admins issue an API token for a user (scripts, workshop set-up)."""
    user = await hub.users.get(name)
    async with hub.db.session() as session:
        token = await issue_token(session, user, kind="api", note=body.note)
    await audit("token.create", actor=caller.name, target=user.name, note=body.note)
    return TokenCreated(token=token, note=body.note)


@router.post("/users/{name}/enable", response_model=UserPublic)
async def enable_user(name: str, caller: AdminDep, hub: HubDep,
                      audit: AuditDep) -> UserPublic:
    return UserPublic.of(await hub.reinstate(name, by=caller.name, address=audit.address))


@router.delete("/users/{name}", response_model=UserDeleted)
async def delete_user(
    name: str, caller: AdminDep, hub: HubDep, audit: AuditDep,
    delete_home: Annotated[bool, Query(description="Delete the home too (else it is moved "
                                       "to <homes>/.deleted).")] = False,
    confirm: Annotated[str, Query(max_length=30, description="The user's name again: "
                                  "required with delete_home.")] = "",
) -> UserDeleted:
    """Delete an account, its tokens, keys and workspaces (their containers too)."""
    if delete_home and confirm != name:
        raise InvalidInput(f"deleting {name}'s home needs confirm={name}")
    deleted = await hub.delete_user(name, by=caller.name, delete_home=delete_home,
                                    address=audit.address)
    return UserDeleted(name=deleted.name, uid=deleted.uid, home_kept_at=deleted.home_kept_at)


@router.post("/directory/sync", response_model=DirectorySync)
async def sync_directory(caller: AdminDep, hub: HubDep, audit: AuditDep) -> DirectorySync:
    """Disable now the directory accounts that left the directory or its allowed groups."""
    found = await hub.sync_directory(by=caller.name, address=audit.address)
    if found is None:
        raise NotFound("no directory is configured (auth = \"ldap\")")
    return DirectorySync(checked=found.checked, gone=list(found.gone),
                         held_back=found.held_back)


# -- templates -------------------------------------------------------------------------------


@router.get("/templates", response_model=list[TemplateSpec])
async def list_templates(caller: CallerDep, hub: HubDep) -> list[TemplateSpec]:
    """The templates the caller may start workspaces of (admins: all, those for instant
    apps only too)."""
    if caller.is_admin:
        return await hub.templates.list()
    allowance = await hub.allowance(caller.name)
    return [spec for spec in await hub.templates.list()
            if spec.workspaces and allowance.template_allowed(spec.name)]


@router.get("/profiles", response_model=list[ProfilePublic])
async def list_profiles(caller: CallerDep, hub: HubDep) -> list[ProfilePublic]:
    """The resource profiles the caller may start a workspace with, the default first."""
    return [ProfilePublic.of(name, spec)
            for name, spec in allowed_profiles(hub.settings.profiles,
                                               await hub.allowance(caller.name))]


@router.get("/templates/{name}", response_model=TemplateSpec)
async def show_template(name: str, _: CallerDep, hub: HubDep) -> TemplateSpec:
    return await hub.templates.get(name)


@router.post("/templates", response_model=TemplateSpec, status_code=201)
async def add_template(
    body: dict[str, object], caller: AdminDep, hub: HubDep, audit: AuditDep,
    replace: bool = False,
) -> TemplateSpec:
    return await hub.save_template(parse_template(body), replace=replace, by=caller.name,
                                   address=audit.address)


# -- workspaces ----------------------------------------------------------------------------


@router.get("/workspaces", response_model=list[WorkspacePublic])
async def list_workspaces(
    caller: CallerDep, hub: HubDep, all: bool = Query(False, description="Admins: everyone's")
) -> list[WorkspacePublic]:
    if all and not caller.is_admin:
        raise PermissionDenied("only administrators can list everyone's workspaces")
    records = await hub.store.list(owner=None if all else caller.name)
    return await public_workspaces(hub, records)


async def public_workspaces(hub: Hub, records: list[WorkspaceRecord]) -> list[WorkspacePublic]:
    """``records`` as the API shows them, with their idle policy and when they stop unused."""
    idle = await hub.idle.views(records)
    return [WorkspacePublic.of(record, idle.get(record.id), hub.gpus.held_by(record.id))
            for record in records]


@router.post("/workspaces", response_model=WorkspacePublic, status_code=201)
async def create_workspace(
    body: WorkspaceCreate, caller: CallerDep, hub: HubDep, audit: AuditDep
) -> WorkspacePublic:
    owner = body.owner or caller.name
    if owner != caller.name and not caller.is_admin:
        raise PermissionDenied("only administrators can create workspaces for others")
    acting = owner != caller.name  # an admin for someone else: past their allowance
    record = await hub.create_workspace(owner, body.name, body.template, body.profile,
                                        by_admin=acting)
    target = f"{owner}/{body.name}"
    await audit("workspace.create", actor=caller.name, target=target, template=body.template)
    if body.start:
        try:
            record = await hub.start_workspace(owner, body.name, by_admin=acting)
        except QuotaExceeded:  # refused before anything ran: undone, as the page does
            await hub.manager.delete(owner, body.name)
            await audit("workspace.delete", actor=caller.name, target=target, why="quota")
            raise
        await audit("workspace.start", actor=caller.name, target=target)
    return (await public_workspaces(hub, [record]))[0]


@router.get("/workspaces/{owner}/{name}", response_model=WorkspacePublic)
async def show_workspace(owner: str, name: str, caller: CallerDep, hub: HubDep) -> WorkspacePublic:
    return (await public_workspaces(hub, [await visible_workspace(hub, caller, owner, name)]))[0]


@router.post("/workspaces/{owner}/{name}/start", response_model=WorkspacePublic)
async def start_workspace(owner: str, name: str, caller: CallerDep, hub: HubDep,
                          audit: AuditDep) -> WorkspacePublic:
    await visible_workspace(hub, caller, owner, name)
    record = await hub.start_workspace(owner, name, by_admin=owner != caller.name)
    await audit("workspace.start", actor=caller.name, target=f"{owner}/{name}")
    return (await public_workspaces(hub, [record]))[0]


@router.post("/workspaces/{owner}/{name}/stop", response_model=WorkspacePublic)
async def stop_workspace(owner: str, name: str, caller: CallerDep, hub: HubDep,
                         audit: AuditDep) -> WorkspacePublic:
    await visible_workspace(hub, caller, owner, name)
    record = await hub.manager.stop(owner, name)
    await audit("workspace.stop", actor=caller.name, target=f"{owner}/{name}")
    return (await public_workspaces(hub, [record]))[0]


@router.delete("/workspaces/{owner}/{name}", status_code=204)
async def delete_workspace(owner: str, name: str, caller: CallerDep, hub: HubDep,
                           audit: AuditDep) -> Response:
    await visible_workspace(hub, caller, owner, name)
    await hub.manager.delete(owner, name)
    await audit("workspace.delete", actor=caller.name, target=f"{owner}/{name}")
    return Response(status_code=204)


@router.get("/workspaces/{owner}/{name}/events", summary="Progress as server-sent events")
async def workspace_events(
    owner: str,
    name: str,
    caller: CallerDep,
    hub: HubDep,
    after: int = Query(0, ge=0, le=MAX_ID),
    follow: bool = True,
) -> StreamingResponse:
    record = await visible_workspace(hub, caller, owner, name)
    return StreamingResponse(
        follow_events(hub, record, after, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/workspaces/{owner}/{name}/logs", response_class=Response)
async def workspace_logs(
    owner: str, name: str, caller: CallerDep, hub: HubDep, tail: int = Query(100, ge=1, le=5000)
) -> Response:
    record = await visible_workspace(hub, caller, owner, name)
    if not record.container_id:
        raise NotFound("this workspace has no container yet")
    text = await hub.runtime.logs(record.container_id, tail=tail)
    return Response(text, media_type="text/plain; charset=utf-8")


@router.get("/usage", response_model=list[WorkspaceUsage], summary="Resource use (admins)")
async def usage(_: AdminDep, hub: HubDep) -> list[WorkspaceUsage]:
    return await workspace_usage(hub)


async def workspace_usage(
    hub: Hub, records: list[WorkspaceRecord] | None = None
) -> list[WorkspaceUsage]:
    """Resource use of ``records`` (default: every workspace), in the same order."""
    if records is None:
        records = await hub.store.list()

    async def one(record: WorkspaceRecord) -> WorkspaceUsage:
        cpu = mem = limit = None
        if record.state == State.RUNNING and record.container_id:
            try:
                stats = await hub.runtime.stats(record.container_id)
                cpu, mem, limit = stats.cpu_percent, stats.memory_bytes, stats.memory_limit_bytes
            except LabspaceError:  # usage is best effort: the row stays visible
                pass
        return WorkspaceUsage(
            owner=record.owner,
            name=record.name,
            state=record.state,
            cpu_percent=cpu,
            memory_bytes=mem,
            memory_limit_bytes=limit,
        )

    return list(await asyncio.gather(*(one(record) for record in records)))
