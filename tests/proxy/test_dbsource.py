"""The proxy's lean SQL route source agrees with the hub's ORM, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update

from labspace.identity.credentials import SCOPED_TOKEN_KIND
from labspace.identity.tokens import digest, issue_token
from labspace.identity.users import UserService
from labspace.proxy.dbsource import DatabaseRouteSource
from labspace.state.db import Database
from labspace.state.models import Token
from labspace.templates import builtin_templates
from labspace.templates.store import TemplateStore
from labspace.workspaces.events import EventBus
from labspace.workspaces.spec import instance_spec
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceStore


async def proxy_url(db: Database) -> str:
    if db.is_sqlite:
        return db.url
    async with db.session() as session:
        schema = await session.scalar(text("SELECT current_schema()"))
    return f"{db.url}?search_path={schema}"


async def test_routes_and_principals(db: Database) -> None:
    users = UserService(db)
    alice = await users.create("alice", password="rabbit-hole-watch")
    boss = await users.create("boss", is_admin=True)
    templates = TemplateStore(db)
    await templates.seed(builtin_templates("img"))
    store = WorkspaceStore(db, EventBus())
    record = await store.create("alice", "thesis", "jupyterlab")
    async with db.session() as session:
        alice_token = await issue_token(session, alice, kind="session", max_age=3600)
        boss_token = await issue_token(session, boss, kind="api")
        boss_laptop = await issue_token(session, boss, kind=SCOPED_TOKEN_KIND)
    source = DatabaseRouteSource(await proxy_url(db))
    try:
        stopped = await source.route("alice", "thesis")
        assert stopped is not None and stopped.state == "stopped" and stopped.target is None
        await store.transition(record.id, State.PENDING)
        await store.transition(record.id, State.STARTING)
        started_from = await templates.get("jupyterlab")
        await store.begin_instance(record.id, instance_spec(started_from, "sha256:1"),
                                   handle="c1")
        await store.transition(record.id, State.RUNNING, target="http://10.1.2.3:8888")
        running = await source.route("alice", "thesis")
        assert running is not None and running.target == "http://10.1.2.3:8888"
        assert running.secret_header == "Authorization"
        assert running.secret_value == f"token {record.secret}"
        assert running.strip_prefix is False
        # Editing the template changes nothing for the running workspace: the proxy routes
        # from what its start recorded.
        edited = started_from.model_copy(update={"app": started_from.app.model_copy(
            update={"secret_header": "X-Other", "base_url": "strip"})})
        await templates.add(edited, replace=True)
        assert await source.route("alice", "thesis") == running
        await store.transition(record.id, State.STOPPING)
        await store.transition(record.id, State.STOPPED)  # the instance ends with the start
        assert (await source.route("alice", "thesis")).target is None  # type: ignore[union-attr]
        assert [i.ended_at is not None for i in await store.instances(record.id)] == [True]
        assert await source.route("alice", "nope") is None
        assert await source.route("bob", "thesis") is None

        principal = await source.principal(digest(alice_token))
        assert principal is not None and (principal.user, principal.is_admin) == ("alice", False)
        admin = await source.principal(digest(boss_token))
        assert admin is not None and admin.is_admin
        laptop = await source.principal(digest(boss_laptop))  # `labspace login`: no admin
        assert laptop is not None and (laptop.user, laptop.is_admin) == ("boss", False)
        assert await source.principal(digest("lsp_unknown")) is None
        assert await source.principal("not-even-a-digest") is None

        async with db.session() as session:  # an expired session no longer counts
            await session.execute(update(Token).where(Token.user_id == alice.id).values(
                expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert await source.principal(digest(alice_token)) is None
        await users.set_disabled("boss")  # neither does a disabled account's token
        assert await source.principal(digest(boss_token)) is None
    finally:
        await source.close()
