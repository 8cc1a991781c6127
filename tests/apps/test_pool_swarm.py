"""Instant-app pools on a real multi-node swarm (tests/conftest.py's ``swarm_cluster``): the
same pools, over the Swarm runtime. Spares are services placed over the workers, each counted
once its readiness URL answers through the gateway; a claim hands one out and its
replacement is started; deleting the app removes every service.

Only addresses the engine reported for this module's own services are probed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from labspace.apps.model import AppDefinition, PoolSettings
from labspace.apps.pool import AppPools, Claimed
from labspace.apps.ratelimit import ClaimRate
from labspace.apps.service import AppService
from labspace.apps.store import AppStore
from labspace.config import Settings
from labspace.runtime.base import LABEL_APP, LABEL_INSTANCE
from labspace.runtime.swarm import SwarmRuntime
from labspace.state.db import Database
from labspace.templates.model import AppSpec, LimitSpec, TemplateSpec
from labspace.templates.store import TemplateStore
from labspace.testing.swarm import PREFIX, TASK_IMAGE
from labspace.testing.swarmprobe import remove_edge

pytestmark = [pytest.mark.swarm, pytest.mark.docker]

RUN = uuid.uuid4().hex[:6]
EDGE = f"{PREFIX}-apps-{RUN}"
HTTPD = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && "
         "exec busybox httpd -f -p 8888 -h /www"]


@pytest.fixture
async def pools(tmp_path: Path, swarm_task_ref: str, swarm_guard_ref: str
                ) -> AsyncIterator[tuple[AppService, SwarmRuntime, Settings]]:
    settings = Settings(data_dir=tmp_path / "data", instance=f"t{RUN}", docker_network=EDGE,
                        isolate_host=False, start_timeout=120, app_pool_interval=0.5,
                        app_starts_at_once=4)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
    await db.migrate()
    templates = TemplateStore(db)
    await templates.add(TemplateSpec(
        name="httpd", display_name="httpd", image=swarm_task_ref, workspaces=False,
        app=AppSpec(command=HTTPD, port=8888, base_url="strip", health_path="/"),
        limits=LimitSpec(cpus=0.1, memory="64m", pids=64)))
    runtime = SwarmRuntime(gateway_image=TASK_IMAGE, guard_image=swarm_guard_ref)
    store = AppStore(db)
    service = AppService(store, AppPools(settings, store, runtime, templates), templates,
                         ClaimRate(1000, 1000))
    await service.pools.start()
    try:
        yield service, runtime, settings
    finally:
        await service.pools.close()
        for info in await runtime.list({LABEL_INSTANCE: settings.instance}):
            await runtime.remove(info.id)
        await runtime.close()
        remove_edge(EDGE)
        await db.close()


async def until(check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.5)


async def test_spares_are_services_over_the_workers_and_a_claim_is_served(pools) -> None:  # type: ignore[no-untyped-def]
    service, runtime, settings = pools
    await service.add(AppDefinition(name="web", template="httpd", path="",
                                    pool=PoolSettings(spares=4)), by="admin")

    async def spares_ready() -> bool:
        return (await service.status("web")).ready >= 4
    await until(spares_ready, 240)
    mine = {LABEL_INSTANCE: settings.instance, LABEL_APP: "web"}
    placed = [info for info in await runtime.list(mine) if info.running]
    assert len(placed) == 4
    assert len({info.node for info in placed}) >= 2, [info.node for info in placed]

    claimed = await service.pools.claim("web", browser="b" * 32, address="127.0.0.1")
    assert isinstance(claimed, Claimed)
    pool = service.pools.pool("web")
    slot = pool.claimed[claimed.slot]
    async with httpx.AsyncClient(timeout=10) as client:  # as the proxy reaches it
        answer = await client.get(f"{slot.target}/")
    assert answer.status_code == 200 and answer.text.strip()  # the task's hostname

    async def replaced() -> bool:
        return (await service.status("web")).ready >= 4
    await until(replaced, 240)
    assert claimed.slot not in {s.slot for s in pool.ready}  # never handed out twice

    await service.delete("web")

    async def all_gone() -> bool:
        return not await runtime.list(mine)
    await until(all_gone, 120)
