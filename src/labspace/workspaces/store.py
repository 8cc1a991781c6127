"""Workspace records and their event history in the database."""

from __future__ import annotations

import builtins
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from labspace.errors import Conflict, NotFound
from labspace.names import validate_name
from labspace.state.db import Database
from labspace.state.models import User, Workspace, WorkspaceEvent, WorkspaceInstance, utcnow
from labspace.workspaces.events import Event, EventBus
from labspace.workspaces.spec import WorkspaceIdentity
from labspace.workspaces.states import State, can_move


@dataclass(frozen=True)
class WorkspaceRecord:
    """A read-only snapshot of one workspace row, safe to pass between tasks."""

    id: int
    owner: str
    uid: int
    name: str
    template: str
    state: State
    message: str
    container_id: str | None
    target: str | None
    secret: str
    created_at: datetime
    updated_at: datetime
    node: str = ""  # where its open instance runs ("" on a single engine, or none open)
    gid: int | None = None  # its owner's primary gid (User.primary_gid); None: the uid
    groups: tuple[tuple[str, int], ...] = ()  # its owner's groups that have a gid
    profile: str = ""  # the resource profile it starts with ("": the template's limits)

    @property
    def identity(self) -> WorkspaceIdentity:
        return WorkspaceIdentity(
            id=self.id, owner=self.owner, uid=self.uid, name=self.name, secret=self.secret,
            gid=self.gid, groups=self.groups)


def _record(ws: Workspace, owner: User, node: str | None = None) -> WorkspaceRecord:
    return WorkspaceRecord(
        id=ws.id,
        owner=owner.name,
        uid=owner.uid,
        gid=owner.primary_gid,
        groups=tuple((str(group["name"]), int(group["gid"])) for group in owner.groups or []
                     if isinstance(group.get("gid"), int)),
        name=ws.name,
        template=ws.template,
        profile=ws.profile,
        state=State(ws.state),
        message=ws.message,
        container_id=ws.container_id,
        target=ws.target,
        secret=ws.secret,
        created_at=ws.created_at,
        updated_at=ws.updated_at,
        node=node or "",
    )


def _rows() -> Select[Workspace, User, str]:
    """Workspaces with their owner and the node of their open instance, if any (at most one
    is open: a partial unique index says so)."""
    is_open = and_(WorkspaceInstance.workspace_id == Workspace.id,
                   WorkspaceInstance.ended_at.is_(None))
    return (select(Workspace, User, WorkspaceInstance.node).join(User)
            .outerjoin(WorkspaceInstance, is_open))


async def _open_instance(session: AsyncSession, workspace_id: int) -> WorkspaceInstance | None:
    found: WorkspaceInstance | None = await session.scalar(select(WorkspaceInstance).where(
        WorkspaceInstance.workspace_id == workspace_id, WorkspaceInstance.ended_at.is_(None)))
    return found


async def _follow_instance(session: AsyncSession, workspace_id: int, state: State,
                           fields: dict[str, Any]) -> None:
    """Keep the open instance in step with a transition: its app endpoint while running, and
    its end when the workspace stops or fails (the proxy routes only open instances)."""
    instance = await _open_instance(session, workspace_id)
    if instance is None:
        return
    if fields.get("target"):
        instance.endpoints = {**instance.endpoints, "app": fields["target"]}
    if state in (State.STOPPED, State.FAILED):
        instance.ended_at = utcnow()


class InvalidTransition(Conflict):
    pass


class WorkspaceStore:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self.db = db
        self.bus = bus

    async def create(self, owner: str, name: str, template: str, profile: str = ""
                     ) -> WorkspaceRecord:
        validate_name(name, kind="workspace name")
        try:
            async with self.db.session() as session:
                user = await session.scalar(select(User).where(User.name == owner))
                if user is None:
                    raise NotFound(f"no user {owner!r}")
                exists = await session.scalar(
                    select(Workspace.id).where(
                        Workspace.owner_id == user.id, Workspace.name == name
                    )
                )
                if exists:
                    raise Conflict(f"workspace {name!r} exists already")
                ws = Workspace(
                    owner_id=user.id,
                    name=name,
                    template=template,
                    profile=profile,
                    state=State.STOPPED,
                    secret=secrets.token_urlsafe(32),
                )
                session.add(ws)
                await session.flush()
                session.add(
                    WorkspaceEvent(
                        workspace_id=ws.id,
                        state=State.STOPPED,
                        message=f"created from template {template}"
                        + (f", profile {profile}" if profile else ""),
                    )
                )
                return _record(ws, user)
        except IntegrityError as error:
            raise Conflict(f"workspace {name!r} exists already") from error

    async def get(self, owner: str, name: str) -> WorkspaceRecord:
        async with self.db.session() as session:
            row = (
                await session.execute(
                    _rows().where(User.name == owner, Workspace.name == name))
            ).first()
        if row is None:
            raise NotFound(f"no workspace {owner}/{name}")
        return _record(*row)

    async def get_by_id(self, workspace_id: int) -> WorkspaceRecord | None:
        async with self.db.session() as session:
            row = (
                await session.execute(_rows().where(Workspace.id == workspace_id))
            ).first()
        return _record(*row) if row else None

    async def list(self, owner: str | None = None) -> builtins.list[WorkspaceRecord]:
        query = _rows().order_by(User.name, Workspace.name)
        if owner is not None:
            query = query.where(User.name == owner)
        async with self.db.session() as session:
            return [_record(*row) for row in (await session.execute(query)).all()]

    async def transition(
        self,
        workspace_id: int,
        state: State,
        message: str = "",
        *,
        force: bool = False,
        **fields: Any,
    ) -> WorkspaceRecord:
        """Move to ``state`` (checked against the state machine), store and publish the event."""
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(Workspace, User).join(User).where(Workspace.id == workspace_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"workspace {workspace_id} is gone")
            ws, user = row
            if not force and not can_move(State(ws.state), state):
                raise InvalidTransition(
                    f"workspace {user.name}/{ws.name} is {ws.state}, it cannot become {state}"
                )
            ws.state = state
            ws.message = message[:2000]
            for key, value in fields.items():
                setattr(ws, key, value)
            await _follow_instance(session, ws.id, state, fields)
            event = WorkspaceEvent(workspace_id=ws.id, state=state, message=message[:4000])
            session.add(event)
            await session.flush()
            record = _record(ws, user)
            published = Event(event.id, ws.id, event.at, state, message)
        self.bus.publish(published)
        return record

    async def begin_instance(self, workspace_id: int, spec: dict[str, Any], *, handle: str,
                             node: str = "", runtime_state: dict[str, str] | None = None,
                             devices: builtins.list[str] | None = None) -> None:
        """Record a start (its container exists now). A start resumed after a hub restart
        keeps its open instance and only refreshes where it runs, the backend's state and
        what it holds. ``devices``: the UUIDs of the GPUs it holds."""
        state = dict(runtime_state or {})
        held = list(devices or [])
        async with self.db.session() as session:
            current = await _open_instance(session, workspace_id)
            if current is not None:
                current.handle, current.node, current.runtime_state = handle, node, state
                current.devices = held
                return
            session.add(WorkspaceInstance(workspace_id=workspace_id, spec=spec, handle=handle,
                                          node=node, runtime_state=state, endpoints={},
                                          devices=held))

    async def held_devices(self) -> builtins.list[tuple[int, str, builtins.list[str], bool]]:
        """What the open instances hold: (workspace id, "owner/name", GPU UUIDs, shared),
        for a restarted hub to hold the same GPUs again (labspace.gpus)."""
        async with self.db.session() as session:
            rows = await session.execute(
                select(WorkspaceInstance.workspace_id, User.name, Workspace.name,
                       WorkspaceInstance.devices, WorkspaceInstance.spec)
                .join(Workspace, Workspace.id == WorkspaceInstance.workspace_id)
                .join(User, User.id == Workspace.owner_id)
                .where(WorkspaceInstance.ended_at.is_(None)))
            return [(wid, f"{owner}/{name}", list(devices), bool(
                        ((spec or {}).get("limits") or {}).get("shared_gpu")))
                    for wid, owner, name, devices, spec in rows.all() if devices]

    async def place_instance(self, workspace_id: int, *, node: str,
                             runtime_state: dict[str, str]) -> None:
        """Where the backend placed the open instance, once it has (a cluster places a
        container when it starts, not when it is created)."""
        async with self.db.session() as session:
            current = await _open_instance(session, workspace_id)
            if current is not None:
                current.node, current.runtime_state = node, dict(runtime_state)

    async def started_at(self) -> dict[int, datetime]:
        """When the open instance of each workspace that has one started, by workspace id
        (the idle culler's "in use since" for a workspace nobody has touched yet)."""
        async with self.db.session() as session:
            rows = await session.execute(select(
                WorkspaceInstance.workspace_id, WorkspaceInstance.started_at).where(
                WorkspaceInstance.ended_at.is_(None)))
            return {workspace_id: at for workspace_id, at in rows.all()}

    async def instances(self, workspace_id: int) -> builtins.list[WorkspaceInstance]:
        """Every start of a workspace, oldest first (the last may be open)."""
        async with self.db.session() as session:
            rows = await session.scalars(select(WorkspaceInstance).where(
                WorkspaceInstance.workspace_id == workspace_id).order_by(WorkspaceInstance.id))
            return list(rows)

    async def note(self, record: WorkspaceRecord, message: str) -> None:
        """A progress step that does not change the state (stored and published)."""
        async with self.db.session() as session:
            event = WorkspaceEvent(workspace_id=record.id, state=record.state, message=message)
            session.add(event)
            await session.flush()
            published = Event(event.id, record.id, event.at, record.state, message)
        self.bus.publish(published)

    async def events(
        self, workspace_id: int, after: int = 0, limit: int = 200
    ) -> builtins.list[Event]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(WorkspaceEvent)
                .where(WorkspaceEvent.workspace_id == workspace_id, WorkspaceEvent.id > after)
                .order_by(WorkspaceEvent.id.desc())
                .limit(limit)
            )
            return [
                Event(e.id, e.workspace_id, e.at, e.state, e.message) for e in reversed(list(rows))
            ]

    async def delete(self, workspace_id: int) -> None:
        async with self.db.session() as session:
            await session.execute(delete(Workspace).where(Workspace.id == workspace_id))
