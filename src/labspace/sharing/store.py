"""Share levels in the database: one row per port shared wider than private."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from labspace.sharing.levels import ShareLevel, capped, level_of
from labspace.state.db import Database
from labspace.state.models import PortShare, User, Workspace


class ShareChange(NamedTuple):
    """A share's new level: what the proxy re-checks the open connections against."""

    owner: str
    workspace: str
    port: int
    level: ShareLevel


class ShareStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def levels(self, workspace_id: int) -> dict[int, ShareLevel]:
        """The ports of a workspace shared wider than private, with their level."""
        async with self.db.session() as session:
            rows = await session.execute(select(PortShare.port, PortShare.level).where(
                PortShare.workspace_id == workspace_id))
            return {port: level_of(level) for port, level in rows}

    async def set(self, workspace_id: int, port: int, level: ShareLevel) -> ShareLevel:
        """Record ``level`` for the port; returns the level it had."""
        try:
            return await self._set(workspace_id, port, level)
        except IntegrityError:  # another request made the row first: change that one
            return await self._set(workspace_id, port, level)

    async def _set(self, workspace_id: int, port: int, level: ShareLevel) -> ShareLevel:
        async with self.db.session() as session:
            row = await session.scalar(select(PortShare).where(
                PortShare.workspace_id == workspace_id, PortShare.port == port))
            before = level_of(row.level if row else None)
            if level is ShareLevel.PRIVATE:
                if row is not None:
                    await session.delete(row)
            elif row is None:
                session.add(PortShare(workspace_id=workspace_id, port=port, level=level.value))
            else:
                row.level = level.value
            return before

    async def apply_cap(self, template: str, cap: ShareLevel) -> list[ShareChange]:
        """Lower every share of ``template``'s workspaces that is wider than ``cap``."""
        async with self.db.session() as session:
            rows = (await session.execute(
                select(PortShare, Workspace.name, User.name)
                .join(Workspace, Workspace.id == PortShare.workspace_id)
                .join(User, User.id == Workspace.owner_id)
                .where(Workspace.template == template))).all()
            changes: list[ShareChange] = []
            for share, workspace, owner in rows:
                level = capped(level_of(share.level), cap)
                if level is level_of(share.level):
                    continue
                changes.append(ShareChange(owner, workspace, share.port, level))
                if level is ShareLevel.PRIVATE:
                    await session.delete(share)
                else:
                    share.level = level.value
            return changes
