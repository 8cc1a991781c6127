"""When a spare counts: placed by the engine, then its app answering its readiness URL.

A single engine runs a container as soon as it is started; a swarm may first look for a node
with room or pull the image (the task is "created" meanwhile). Either way a spare is handed
out only once its readiness URL answers 200, and a container that exits first fails the
start at once instead of at the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from labspace.errors import StartFailed
from labspace.runtime import Runtime
from labspace.runtime.base import ContainerInfo

INSPECT_EVERY = 1.0  # seconds between looks at the engine while the app does not answer


async def wait_placed(runtime: Runtime, info: ContainerInfo, deadline: float) -> ContainerInfo:
    """``info`` once the engine runs it (``deadline``: time.monotonic())."""
    while info.status == "created":
        if time.monotonic() > deadline:
            why = f": {info.error}" if info.error else ""
            raise StartFailed(f"not placed on a node within start_timeout{why}")
        await asyncio.sleep(0.25)
        found = await runtime.inspect(info.id)
        if found is None:
            raise StartFailed("the container vanished before it ran")
        info = found
    if not info.running:
        raise StartFailed(info.error or f"the container exited (code {info.exit_code}) "
                          "before its app answered")
    return info


async def wait_ready(http: aiohttp.ClientSession, runtime: Runtime, url: str,
                     header: tuple[str, str], container_id: str, deadline: float) -> None:
    """Until ``url`` answers 200 (``deadline``: time.monotonic())."""
    delay, next_inspect = 0.05, time.monotonic() + INSPECT_EVERY
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, headers=dict([header]), allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status == 200:
                    return
        now = time.monotonic()
        if now > deadline:
            raise StartFailed("the app did not answer within start_timeout")
        if now >= next_inspect:
            next_inspect = now + INSPECT_EVERY
            info = await runtime.inspect(container_id)
            if info is None or not info.running:
                raise StartFailed("the container exited before its app answered")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.25)
