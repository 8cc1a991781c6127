"""Workspaces: the lifecycle state machine, the manager that drives it, and reconciliation."""

from labspace.workspaces.manager import WorkspaceManager
from labspace.workspaces.reconcile import reconcile, reconcile_forever
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord, WorkspaceStore

__all__ = [
    "State",
    "WorkspaceManager",
    "WorkspaceRecord",
    "WorkspaceStore",
    "reconcile",
    "reconcile_forever",
]
