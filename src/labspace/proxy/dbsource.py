"""The proxy's RouteSource backed by labspace's database, read-only, in plain SQL.

The proxy never asks the hub: it reads the same database, so it keeps routing and
authenticating while the hub restarts. It deliberately avoids the ORM and pydantic (two
queries do not need them) so the proxy process stays small: stdlib sqlite3 for SQLite,
asyncpg for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from labspace.identity.credentials import SCOPED_TOKEN_KIND
from labspace.proxy.source import ClaimRoute, Principal, Route

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
# The route comes from the workspace's open instance (what its start recorded), never from
# its template: editing a template changes nothing for workspaces already running.
ROUTE_SQL = (
    "SELECT w.state, i.endpoints, w.secret, i.spec FROM workspaces w "
    "JOIN users u ON u.id = w.owner_id "
    "LEFT JOIN workspace_instances i ON i.workspace_id = w.id AND i.ended_at IS NULL "
    "WHERE u.name = {0} AND w.name = {1}"
)
# A `labspace login` token never carries admin powers (identity/credentials.py says why).
PRINCIPAL_SQL = (
    f"SELECT u.name, u.is_admin AND k.kind <> '{SCOPED_TOKEN_KIND}' "  # noqa: S608 - a constant
    "FROM tokens k JOIN users u ON u.id = k.user_id "
    "WHERE k.digest = {0} AND NOT u.disabled AND (k.expires_at IS NULL OR k.expires_at > {1})"
)
SHARE_SQL = (
    "SELECT s.level FROM port_shares s JOIN workspaces w ON w.id = s.workspace_id "
    "JOIN users u ON u.id = w.owner_id "
    "WHERE u.name = {0} AND w.name = {1} AND s.port = {2} AND NOT u.disabled"
)
CLAIM_SQL = (
    "SELECT c.target, c.claim_digest, c.secret, c.spec, a.spec FROM app_containers c "
    "JOIN apps a ON a.id = c.app_id "
    "WHERE a.name = {0} AND c.slot = {1} AND c.state = 'claimed'"
)
# The proxy's one write: an admin opened someone else's workspace (adminopens.py).
AUDIT_SQL = (
    "INSERT INTO audit_events (at, actor, action, target, address, ok, detail) "
    "VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6})"
)
AUDIT_DETAIL = '{"via": "proxy"}'
PRIVATE = "private"


def _json(value: Any) -> dict[str, Any]:
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {}


def route_from_row(owner: str, workspace: str, row: tuple[Any, ...]) -> Route:
    state, endpoints, secret, spec = row
    app: dict[str, Any] = _json(spec).get("app", {})
    target = _json(endpoints).get("app")
    return Route(
        owner=owner,
        workspace=workspace,
        state=state,
        target=target if state == "running" and isinstance(target, str) else None,
        secret_header=app.get("secret_header", "Authorization"),
        secret_value=app.get("secret_value", "token {secret}").replace("{secret}", secret),
        strip_prefix=app.get("base_url") == "strip",
    )


def claim_from_row(app: str, slot: str, row: tuple[Any, ...]) -> ClaimRoute:
    target, digest, secret, spec, definition = row
    app_spec: dict[str, Any] = _json(spec).get("app", {})
    return ClaimRoute(
        app=app, slot=slot, target=target if isinstance(target, str) else None,
        claim_digest=digest or "", shareable=bool(_json(definition).get("shareable")),
        secret_header=app_spec.get("secret_header", "Authorization"),
        secret_value=app_spec.get("secret_value", "token {secret}").replace("{secret}", secret),
        strip_prefix=app_spec.get("base_url") == "strip",
    )


class _Queries(Protocol):
    async def one(self, sql: str, *args: Any) -> tuple[Any, ...] | None: ...

    async def write(self, sql: str, *args: Any) -> None: ...

    async def close(self) -> None: ...


class SQLiteQueries:
    """One read-only connection used from one worker thread at a time (WAL: never blocks the
    hub's writes)."""

    placeholders = ("?", "?", "?", "?", "?", "?", "?")

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        # Writes (rare: audit entries) get their own connection, so reads never wait on
        # SQLite's write lock; mode=rw never creates the file.
        self._writer: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()

    def _run(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self._connection is None:
            self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                               check_same_thread=False, timeout=10)
        cursor = self._connection.execute(sql, args)
        try:
            row: tuple[Any, ...] | None = cursor.fetchone()
        finally:
            # A SELECT left unfinished keeps its WAL snapshot: this connection would go on
            # reading the database as it was (a claim just made would not be there yet).
            cursor.close()
        return row

    async def one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        async with self._lock:
            return await asyncio.to_thread(self._run, sql, args)

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        if self._writer is None:
            self._writer = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True,
                                           check_same_thread=False, timeout=10,
                                           isolation_level=None)  # autocommit
        self._writer.execute(sql, args)

    async def write(self, sql: str, *args: Any) -> None:
        async with self._write_lock:
            await asyncio.to_thread(self._write, sql, args)

    @staticmethod
    def now() -> str:
        # SQLAlchemy stores UTC datetimes in SQLite as this sortable text.
        return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    async def close(self) -> None:
        for connection in (self._connection, self._writer):
            if connection is not None:
                connection.close()


class PostgresQueries:
    placeholders = ("$1", "$2", "$3", "$4", "$5", "$6", "$7")

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4)
        return self._pool

    async def one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        row = await (await self._ready()).fetchrow(sql, *args)
        return tuple(row) if row is not None else None

    async def write(self, sql: str, *args: Any) -> None:
        await (await self._ready()).execute(sql, *args)

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


class DatabaseRouteSource:
    def __init__(self, url: str) -> None:
        self.queries: SQLiteQueries | PostgresQueries
        if url.startswith("sqlite"):
            self.queries = SQLiteQueries(url.split(":///", 1)[1])
        elif url.startswith("postgresql"):
            parts = urlsplit(url)
            self.queries = PostgresQueries(
                parts._replace(scheme="postgresql").geturl()
            )
        else:
            raise ValueError(f"unsupported database URL for the proxy: {url.split(':', 1)[0]}")
        marks = self.queries.placeholders
        self._route_sql = ROUTE_SQL.format(*marks)
        self._principal_sql = PRINCIPAL_SQL.format(*marks)
        self._share_sql = SHARE_SQL.format(*marks)
        self._claim_sql = CLAIM_SQL.format(*marks)
        self._audit_sql = AUDIT_SQL.format(*marks)

    async def route(self, owner: str, workspace: str) -> Route | None:
        row = await self.queries.one(self._route_sql, owner, workspace)
        return route_from_row(owner, workspace, row) if row else None

    async def claim_route(self, app: str, slot: str) -> ClaimRoute | None:
        row = await self.queries.one(self._claim_sql, app, slot)
        return claim_from_row(app, slot, row) if row else None

    async def principal(self, token_digest: str) -> Principal | None:
        if not _DIGEST_RE.fullmatch(token_digest):
            return None
        row = await self.queries.one(self._principal_sql, token_digest, self.queries.now())
        return Principal(user=row[0], is_admin=bool(row[1])) if row else None

    async def share_level(self, owner: str, workspace: str, port: int) -> str:
        row = await self.queries.one(self._share_sql, owner, workspace, port)
        return str(row[0]) if row else PRIVATE

    async def record_audit(self, action: str, actor: str, target: str, address: str) -> None:
        """Insert one audit entry (proxy/adminopens.py: rare, in the background)."""
        await self.queries.write(self._audit_sql, self.queries.now(), actor[:100], action[:40],
                                 target[:200], address[:100], True, AUDIT_DETAIL)

    async def close(self) -> None:
        await self.queries.close()
