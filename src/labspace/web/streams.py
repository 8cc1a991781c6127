"""Server-sent event streams of workspace progress (used by the progress page and the CLI)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from labspace.hub import Hub
from labspace.workspaces.events import Event
from labspace.workspaces.states import SETTLED
from labspace.workspaces.store import WorkspaceRecord

KEEPALIVE_SECONDS = 15.0


def sse(event: Event) -> str:
    return f"id: {event.id}\nevent: progress\ndata: {json.dumps(event.as_dict())}\n\n"


async def follow_events(
    hub: Hub, record: WorkspaceRecord, after: int = 0, follow: bool = True
) -> AsyncIterator[str]:
    """Replay stored events after ``after``, then follow live ones until the workspace
    settles (running, stopped or failed with no operation under way)."""
    queue = hub.bus.subscribe(record.id)  # before reading history: nothing slips between
    try:
        last = after
        for event in await hub.store.events(record.id, after):
            last = event.id
            yield sse(event)
        current = await hub.store.get_by_id(record.id)
        if not follow or current is None:
            return
        if current.state in SETTLED and not hub.manager.busy(record.id):
            return
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if event.id <= last:
                continue
            last = event.id
            yield sse(event)
            if event.state in SETTLED:
                return
    finally:
        hub.bus.unsubscribe(record.id, queue)
