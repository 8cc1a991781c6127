"""The whole stack (hub, proxy, reconcile) on PostgreSQL instead of SQLite."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from labspace.testing import Stack
from tests.conftest import postgres_url, wait_state

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

@pytest.fixture(scope="module")
def pg_stack(jupyter_image: str) -> Iterator[Stack]:
    url = postgres_url()
    # A fresh database per run: the test role may create databases.
    name = "labspace_e2e_" + uuid.uuid4().hex[:8]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"

    async def database(statement: str) -> None:
        eng = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with eng.connect() as connection:
            await connection.execute(text(statement))
        await eng.dispose()

    asyncio.run(database(f'CREATE DATABASE "{name}"'))
    root = Path(tempfile.mkdtemp(prefix="labspace-pg-"))
    stack = Stack(root, extra_env={
        "LABSPACE_DATABASE_URL": url.rsplit("/", 1)[0] + "/" + name,
        "LABSPACE_RECONCILE_INTERVAL": "2",
    })
    try:
        stack.start()
        yield stack
    finally:
        stack.close()
        asyncio.run(database(f'DROP DATABASE IF EXISTS "{name}"'))


def test_workspace_lifecycle_on_postgres(pg_stack: Stack) -> None:
    with pg_stack.client() as api:
        assert api.post("/hub/api/workspaces",
                        json={"name": "pg", "template": "jupyterlab"}).status_code == 201
        wait_state(api, "admin", "pg", {"running"})
        assert api.get("/user/admin/pg/api/status").status_code == 200
        assert api.post("/hub/api/workspaces/admin/pg/stop").json()["state"] == "stopped"
        assert api.get("/user/admin/pg/api/status").status_code == 503
        assert api.delete("/hub/api/workspaces/admin/pg").status_code == 204
    assert pg_stack.containers() == []
