"""State on both supported databases: SQLite (default) and PostgreSQL (by URL)."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from labspace.errors import Conflict, InvalidInput, NotFound
from labspace.identity.tokens import issue_token, resolve_token
from labspace.identity.users import UID_BASE, UserService
from labspace.state.db import HEAD_REVISION, Database
from labspace.state.models import Token
from labspace.templates import builtin_templates
from labspace.templates.store import TemplateStore, parse_template
from labspace.workspaces.events import EventBus
from labspace.workspaces.states import State
from labspace.workspaces.store import InvalidTransition, WorkspaceStore


async def test_migrations_are_idempotent(db: Database) -> None:
    await db.migrate()
    async with db.session() as session:
        version = await session.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == HEAD_REVISION


async def test_users_get_stable_unique_uids(db: Database) -> None:
    users = UserService(db)
    first = await users.create("ada", password="correct horse")
    assert first.uid == UID_BASE
    made = await asyncio.gather(*(users.create(f"u{i}") for i in range(8)))
    uids = {user.uid for user in made} | {first.uid}
    assert len(uids) == 9
    assert (await users.get("ada")).uid == first.uid
    with pytest.raises(Conflict):
        await users.create("ada")
    with pytest.raises(InvalidInput):
        await users.create("Bad_Name")
    with pytest.raises(InvalidInput):
        await users.create("root")
    with pytest.raises(InvalidInput):
        await users.create("short", password="1234")
    assert next(u.name for u in await users.list()) == "ada"


async def test_tokens_resolve_expire_and_die_with_the_account(db: Database) -> None:
    users = UserService(db)
    user = await users.create("grace", password="long enough")
    async with db.session() as session:
        api = await issue_token(session, user, kind="api")
        short = await issue_token(session, user, kind="session", max_age=60)
    async with db.session() as session:
        resolved = await resolve_token(session, api)
        assert resolved is not None and resolved.user.name == "grace"
        stored = list(await session.scalars(Token.__table__.select()))
        assert all(api not in str(row) for row in stored)  # only digests are kept
        assert await resolve_token(session, "lsp_not-a-token") is None
        assert await resolve_token(session, "garbage") is None
        token = (await resolve_token(session, short))
        assert token is not None
        token.token.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    async with db.session() as session:
        assert await resolve_token(session, short) is None
    await users.set_disabled("grace")
    async with db.session() as session:
        assert await resolve_token(session, api) is None


async def test_workspace_state_machine_and_events(db: Database) -> None:
    await UserService(db).create("lin")
    bus = EventBus()
    store = WorkspaceStore(db, bus)
    record = await store.create("lin", "thesis", "jupyterlab")
    assert record.state == State.STOPPED and len(record.secret) >= 32
    with pytest.raises(Conflict):
        await store.create("lin", "thesis", "jupyterlab")
    with pytest.raises(InvalidInput):
        await store.create("lin", "-bad", "jupyterlab")
    with pytest.raises(NotFound):
        await store.create("nobody", "x", "jupyterlab")
    queue = bus.subscribe(record.id)
    with pytest.raises(InvalidTransition):
        await store.transition(record.id, State.RUNNING)
    await store.transition(record.id, State.PENDING, "queued")
    await store.transition(record.id, State.STARTING, "go")
    await store.note(await store.get("lin", "thesis"), "container created")
    await store.transition(record.id, State.RUNNING, "ready", target="http://10.0.0.2:8888")
    live = [queue.get_nowait().message for _ in range(4)]
    assert live == ["queued", "go", "container created", "ready"]
    history = await store.events(record.id)
    assert [e.state for e in history] == ["stopped", "pending", "starting", "starting",
                                          "running"]
    assert history == sorted(history, key=lambda e: e.id)
    assert (await store.get("lin", "thesis")).target == "http://10.0.0.2:8888"
    await store.delete(record.id)
    with pytest.raises(NotFound):
        await store.get("lin", "thesis")
    assert await store.events(record.id) == []


async def test_templates_seed_never_overwrites_and_validate(db: Database) -> None:
    templates = TemplateStore(db)
    await templates.seed(builtin_templates("img:0"))
    await templates.seed(builtin_templates("img:1"))  # a new release: unedited, so refreshed
    assert (await templates.get("jupyterlab")).image == "img:1"
    edited = (await templates.get("jupyterlab")).model_copy(update={"image": "custom:2"})
    await templates.add(edited, replace=True)
    await templates.seed(builtin_templates("img:3"))  # edited by an admin: kept as it is
    assert (await templates.get("jupyterlab")).image == "custom:2"
    with pytest.raises(InvalidInput, match=r"limits\.memory"):
        parse_template({**edited.model_dump(), "name": "x", "limits": {"memory": "lots"}})
    with pytest.raises(InvalidInput, match="name"):
        parse_template({**edited.model_dump(), "name": "Not Valid"})
    with pytest.raises(InvalidInput, match="mounts"):
        parse_template({**edited.model_dump(), "mounts": [{"source": "rel", "target": "/x"}]})


def test_head_revision_constant_matches_the_migrations() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from labspace.state.db import HEAD_REVISION, MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


async def test_a_new_sqlite_database_is_private(tmp_path: Path) -> None:
    """It holds password hashes and workspace secrets: 0600 from its first byte, and SQLite
    gives its -wal and -shm files the same mode (not the umask's 0644)."""
    path = tmp_path / "new" / "labspace.db"
    old_umask = os.umask(0o022)
    try:
        database = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await database.migrate()
            for suffix in ("", "-wal", "-shm"):
                file = path.with_name(path.name + suffix)
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        finally:
            await database.close()
    finally:
        os.umask(old_umask)


async def test_an_upgrade_keeps_running_workspaces_routed(tmp_path: Path) -> None:
    """A database from before instances (revision 0003) with a running workspace: after the
    migration the workspace has an open instance with its address and its template's app
    settings, so the proxy keeps routing it without a restart."""
    from labspace.proxy.dbsource import DatabaseRouteSource

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    old = Database(url)
    await old.migrate("0003")
    async with old.engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO users (id, name, uid, is_admin, disabled, created_at) "
            "VALUES (1, 'ada', 1001, 0, 0, '2026-01-01 00:00:00.000000')"))
        await connection.execute(text(
            "INSERT INTO templates (id, name, spec, created_at, updated_at) VALUES "
            "(1, 'jupyterlab', :spec, '2026-01-01 00:00:00.000000', "
            "'2026-01-01 00:00:00.000000')"),
            {"spec": builtin_templates("img")[0].model_dump_json()})
        await connection.execute(text(
            "INSERT INTO workspaces (id, owner_id, name, template, state, message, "
            "container_id, target, secret, created_at, updated_at) VALUES (1, 1, 'lab', "
            "'jupyterlab', 'running', '', 'c0ffee', 'http://10.9.8.7:8888', 's3cret', "
            "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"))
    await old.close()

    upgraded = Database(url)
    await upgraded.migrate()
    await upgraded.close()
    source = DatabaseRouteSource(url)
    try:
        route = await source.route("ada", "lab")
    finally:
        await source.close()
    assert route is not None and route.state == "running"
    assert route.target == "http://10.9.8.7:8888" and route.secret_value == "token s3cret"
