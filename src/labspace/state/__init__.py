"""Persistent state: SQLAlchemy 2 (async) models, the engine, and Alembic migrations."""

from labspace.state.db import Database
from labspace.state.models import Base, Template, Token, User, Workspace, WorkspaceEvent

__all__ = ["Base", "Database", "Template", "Token", "User", "Workspace", "WorkspaceEvent"]
