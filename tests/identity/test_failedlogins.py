"""The login throttle's failures in the database: kept across restarts, shared, pruned.

The rules themselves are tested without a database in test_throttle.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from labspace.config import Settings
from labspace.errors import TooManyAttempts
from labspace.hub import open_hub
from labspace.identity.failedlogins import LoginThrottle
from labspace.identity.throttle import ThrottleRules
from labspace.runtime.docker import DockerRuntime
from labspace.state.db import Database
from labspace.state.models import LoginFailure


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.5  # wall-clock seconds, as the database keeps them

    def __call__(self) -> float:
        return self.now


async def refused(throttle: LoginThrottle, username: str, address: str) -> int | None:
    try:
        await throttle.check(username, address)
    except TooManyAttempts as error:
        return error.retry_after
    return None


async def fail(throttle: LoginThrottle, username: str, address: str, times: int = 1) -> None:
    for _ in range(times):
        assert await refused(throttle, username, address) is None
        await throttle.failed(username, address)


async def rows(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(LoginFailure)) or 0)


async def test_failures_survive_a_new_throttle_and_are_shared(db: Database) -> None:
    clock = Clock()
    rules = ThrottleRules(max_failures=3, window=60, address_accounts=4)
    first = LoginThrottle(db, rules, clock)
    await fail(first, "ada", "2001:db8:1:2::1", 3)
    # A restarted hub, or another hub on the same database, knows them.
    second = LoginThrottle(db, rules, clock)
    wait = await refused(second, "ada", "2001:db8:1:2::99")  # same /64
    assert wait is not None and 0 < wait <= 61
    assert await refused(second, "ada", "2001:db8:1:3::1") is None
    # Spraying counted across hubs: two accounts through each blocks the address on both.
    for throttle, name in ((first, "u1"), (second, "u2"), (first, "u3"), (second, "u4")):
        await fail(throttle, name, "192.0.2.7")
    assert await refused(first, "anyone", "192.0.2.7") == 301  # a 300 s block
    assert await refused(second, "anyone", "::ffff:192.0.2.7") == 301
    clock.now += 301
    assert await refused(LoginThrottle(db, rules, clock), "ada", "2001:db8:1:2::1") is None


async def test_success_forgives_the_pair_but_not_the_account(db: Database) -> None:
    throttle = LoginThrottle(db, ThrottleRules(max_failures=3, account_failures=4),
                             Clock())
    await fail(throttle, "ada", "10.0.0.1", 2)
    await throttle.succeeded("ada", "10.0.0.1")
    await fail(throttle, "ada", "10.0.0.1", 2)  # rule 1 counts 2 since the success ...
    assert await refused(throttle, "ada", "10.0.0.1") is not None  # ... rule 2 all 4
    assert await refused(throttle, "ada", "10.0.0.2") is None  # a fresh address is checked
    assert await refused(throttle, "bob", "10.0.0.1") is None


async def test_old_failures_are_deleted_and_odd_input_is_stored(db: Database) -> None:
    clock = Clock()
    throttle = LoginThrottle(db, ThrottleRules(), clock)
    for i in range(30):
        await throttle.failed(f"name{i}", f"10.0.{i}.1")
    await throttle.failed("x" * 150, "not an address " * 10)  # longer than the columns
    assert await refused(throttle, "x" * 150, "not an address " * 10) is None
    assert await rows(db) == 31
    clock.now += throttle.rules.memory  # everything is too old to matter: the next failure
    await throttle.failed("late", "10.9.9.9")  # deletes it
    assert await rows(db) == 1


async def test_a_restarted_hub_still_refuses(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    settings = Settings(data_dir=tmp_path / "data")
    hub = await open_hub(settings, DockerRuntime())  # the engine is never called
    try:
        for _ in range(5):
            await hub.login_throttle.failed("ada", "203.0.113.5")
    finally:
        await hub.close()
    hub = await open_hub(settings, DockerRuntime())
    try:
        wait = await refused(hub.login_throttle, "ada", "203.0.113.5")
        assert wait is not None and 0 < wait <= 301
    finally:
        await hub.close()
