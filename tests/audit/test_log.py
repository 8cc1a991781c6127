"""The AuditLog service on a real database (SQLite, and PostgreSQL where available)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from labspace.audit import AuditLog, AuditQuery
from labspace.state.db import Database
from labspace.state.models import AuditEvent


async def _seed(log: AuditLog) -> None:
    await log.record("login.failed", actor="", target="alcie", address="10.0.0.9", ok=False)
    await log.record("login.ok", actor="alice", target="alice", address="10.0.0.9")
    await log.record("workspace.start", actor="alice", target="alice/lab", address="10.0.0.9")
    await log.record("user.disable", actor="boss", target="bob", address="10.0.0.1")
    await log.record("workspace.stop", actor="boss", target="alice/lab", address="10.0.0.1")
    await log.record("logins.weird", actor="x", target="")  # "login" must not match "logins"


async def test_record_and_filters(db: Database) -> None:
    log = AuditLog(db)
    await _seed(log)
    every = await log.query()
    assert [e.action for e in every][:2] == ["logins.weird", "workspace.stop"]  # newest first
    failed = every[-1]
    assert (failed.action, failed.target, failed.address, failed.ok) == (
        "login.failed", "alcie", "10.0.0.9", False)
    logins = await log.query(AuditQuery(action="login"))
    assert sorted(e.action for e in logins) == ["login.failed", "login.ok"]
    # alice: what she did and what was done to her workspaces
    alice = await log.query(AuditQuery(user="alice"))
    assert [e.action for e in alice] == ["workspace.stop", "workspace.start", "login.ok"]
    both = await log.query(AuditQuery(user="alice", action="workspace.stop"))
    assert [e.actor for e in both] == ["boss"]
    assert await log.query(AuditQuery(since=datetime.now(UTC) + timedelta(hours=1))) == []
    assert len(await log.query(AuditQuery(until=datetime.now(UTC) + timedelta(hours=1)))) == 6


async def test_paging_and_json_lines(db: Database) -> None:
    log = AuditLog(db)
    for n in range(7):
        await log.record("workspace.start", actor="alice", target=f"alice/w{n}", n=n)
    first = await log.query(limit=3)
    second = await log.query(AuditQuery(before_id=first[-1].id), limit=3)
    assert [e.detail["n"] for e in first + second] == [6, 5, 4, 3, 2, 1]
    newer = await log.query(AuditQuery(after_id=second[0].id))
    assert [e.detail["n"] for e in newer] == [6, 5, 4]
    lines = [line async for line in log.export_lines()]
    rows = [json.loads(line) for line in lines]
    assert [row["detail"]["n"] for row in rows] == [6, 5, 4, 3, 2, 1, 0]
    assert set(rows[0]) == {"id", "at", "actor", "action", "target", "address", "ok", "detail"}
    assert [json.loads(line)["target"] async for line in log.export_lines(limit=2)] == [
        "alice/w6", "alice/w5"]


async def test_retention_deletes_only_old_entries(db: Database) -> None:
    log = AuditLog(db, retention_days=30)
    await log.record("login.ok", actor="old", target="old")
    await log.record("login.ok", actor="new", target="new")
    async with db.session() as session:
        await session.execute(update(AuditEvent).where(AuditEvent.actor == "old")
                              .values(at=datetime.now(UTC) - timedelta(days=31)))
    assert await log.prune() == 1
    assert [e.actor for e in await log.query()] == ["new"]
    forever = AuditLog(db, retention_days=0)
    assert await forever.prune(now=datetime.now(UTC) + timedelta(days=10_000)) == 0
    assert len(await forever.query()) == 1


async def test_record_never_raises_and_cuts_long_values(
        db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = AuditLog(db)
    await log.record("login.failed", actor="", target="x" * 500, ok=False, path=object())
    entry = (await log.query())[0]
    assert len(entry.target) == 200 and isinstance(entry.detail["path"], str)
    unmigrated = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # no table
    try:
        await AuditLog(unmigrated).record("login.ok", actor="alice")  # logged, not raised
    finally:
        await unmigrated.close()
    assert "could not write the audit entry login.ok" in caplog.text
