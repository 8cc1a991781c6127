"""The async engine and session factory, plus migrations run at start-up."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest migration; tests/state checks it matches the migrations directory.
HEAD_REVISION = "0013"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the proxy read while the hub writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _create_private(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite would create it 0644: it holds password
    hashes and every workspace's secret. SQLite gives its -wal and -shm files the main
    file's mode, so they are private too."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Database:
    """Owns the engine. Every call is async: nothing blocks the event loop."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite, **engine_options}
        if self.is_sqlite and ":///" in url:
            path = url.split(":///", 1)[1].split("?", 1)[0]
            if path and path != ":memory:":
                _create_private(Path(path))
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def migrate(self, to: str = HEAD_REVISION) -> None:
        """Bring the schema to revision ``to``, by default the newest (idempotent; tests of
        upgrades stop at an older one).

        When the schema is current, Alembic is not even imported (it would stay in the hub's
        memory for nothing)."""
        if await self._revision() == to:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        async with self.engine.begin() as connection:

            def upgrade(sync_connection: Any) -> None:
                config.attributes["connection"] = sync_connection
                command.upgrade(config, to)

            await connection.run_sync(upgrade)

    async def _revision(self) -> str | None:
        try:
            async with self.engine.connect() as connection:
                value = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None
        return str(value) if value else None

    async def close(self) -> None:
        await self.engine.dispose()
