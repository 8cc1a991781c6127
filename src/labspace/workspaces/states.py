"""The workspace state machine.

    stopped ──start──▶ pending ──▶ starting ──healthy──▶ running
       ▲                  │            │                     │
       │                  └──stop──────┴────────stop─────────┤
       └──────────────── stopping ◀──────────────────────────┘
    any step that fails ──▶ failed (a failed workspace can be started again)
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


# States in which an operation is under way (a hub restart must finish or undo them).
TRANSIENT = frozenset({State.PENDING, State.STARTING, State.STOPPING})
# States in which a progress stream ends.
SETTLED = frozenset({State.RUNNING, State.STOPPED, State.FAILED})

ALLOWED: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.PENDING}),
    State.FAILED: frozenset({State.PENDING, State.STOPPING, State.STOPPED}),
    State.PENDING: frozenset({State.STARTING, State.STOPPING, State.FAILED}),
    State.STARTING: frozenset({State.RUNNING, State.STOPPING, State.FAILED}),
    State.RUNNING: frozenset({State.STOPPING, State.STOPPED, State.FAILED}),
    State.STOPPING: frozenset({State.STOPPED, State.FAILED}),
}


def can_move(current: State, target: State) -> bool:
    return target == current or target in ALLOWED[current]
