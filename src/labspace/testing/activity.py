"""ScriptedActivity: what the proxy would say about workspaces' use, as a test writes it.

The idle culler's decisions depend on hours of (non-)use; a test cannot wait for them, so
it scripts the snapshot (last use, open tunnels, whether the proxy answers) and moves the
culler's clock instead. The proxy's real side is tested on its own
(tests/proxy/test_activity.py) and end to end (tests/workspaces/test_idle_stack.py).
"""

from __future__ import annotations

import time

from labspace.workspaces.activity import ActivitySnapshot


class ScriptedActivity:
    """An ActivitySource whose snapshot the test sets; it starts knowing nothing of anyone
    (every workspace unused since the epoch) and answering."""

    def __init__(self) -> None:
        self.snapshot = ActivitySnapshot(available=True, now=time.time(), since=0.0)

    def set(self, *, available: bool = True, since: float = 0.0,
            activity: dict[str, float] | None = None,
            tunnels: dict[str, int] | None = None) -> None:
        self.snapshot = ActivitySnapshot(available, time.time(), since, activity or {},
                                         tunnels or {})

    async def fetch(self) -> ActivitySnapshot:
        return self.snapshot
