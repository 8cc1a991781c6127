"""The proxy's RouteSource backed by labspace's database (read-only).

The proxy never asks the hub: it reads the same database, so it keeps routing and
authenticating while the hub restarts.
"""

from __future__ import annotations

from sqlalchemy import select

from labspace.identity.tokens import resolve_token
from labspace.proxy.source import Principal, Route
from labspace.state.db import Database
from labspace.state.models import Template, User, Workspace
from labspace.templates.model import AppSpec


class DatabaseRouteSource:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def route(self, owner: str, workspace: str) -> Route | None:
        async with self.db.session() as session:
            row = (await session.execute(
                select(Workspace.state, Workspace.target, Workspace.secret, Template.spec)
                .join(User, Workspace.owner_id == User.id)
                .outerjoin(Template, Template.name == Workspace.template)
                .where(User.name == owner, Workspace.name == workspace)
            )).first()
        if row is None:
            return None
        state, target, secret, spec = row
        app = AppSpec.model_validate(spec["app"]) if spec else None
        return Route(
            owner=owner,
            workspace=workspace,
            state=state,
            target=target if state == "running" else None,
            secret_header=app.secret_header if app else "Authorization",
            secret_value=(app.secret_value if app else "token {secret}").replace(
                "{secret}", secret),
            strip_prefix=bool(app and app.base_url == "strip"),
        )

    async def principal(self, token: str) -> Principal | None:
        async with self.db.session() as session:
            resolved = await resolve_token(session, token)
        if resolved is None:
            return None
        return Principal(user=resolved.user.name, is_admin=resolved.user.is_admin)
