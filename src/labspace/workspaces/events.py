"""Live progress: an in-process publish/subscribe of workspace events.

Events are also stored (WorkspaceEvent rows), so a late subscriber replays the history first
and then follows live ones.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Event:
    id: int
    workspace_id: int
    at: datetime
    state: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "at": self.at.isoformat(), "state": self.state,
                "message": self.message}


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[int, set[asyncio.Queue[Event]]] = defaultdict(set)

    def publish(self, event: Event) -> None:
        for queue in self._subscribers.get(event.workspace_id, ()):
            queue.put_nowait(event)

    def subscribe(self, workspace_id: int) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers[workspace_id].add(queue)
        return queue

    def unsubscribe(self, workspace_id: int, queue: asyncio.Queue[Event]) -> None:
        subscribers = self._subscribers.get(workspace_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[workspace_id]
