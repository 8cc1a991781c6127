"""workspace instances: one row per start, with what was started and where it is reached

Revision ID: 0004
Revises: 0003

Workspaces that are running (or on their way) when labspace is upgraded get an open instance
made from their template as it is now and their current address, so the proxy keeps routing
them without a restart.
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from labspace.state.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE_STATES = ("pending", "starting", "running", "stopping")


def upgrade() -> None:
    instances = op.create_table(
        "workspace_instances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(),
                  sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("handle", sa.String(length=200), nullable=True),
        sa.Column("runtime_state", sa.JSON(), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("devices", sa.JSON(), nullable=False),
    )
    op.create_index("ix_instances_workspace", "workspace_instances", ["workspace_id", "id"])
    op.create_index("ux_instances_open", "workspace_instances", ["workspace_id"], unique=True,
                    sqlite_where=sa.text("ended_at IS NULL"),
                    postgresql_where=sa.text("ended_at IS NULL"))
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT w.id, w.container_id, w.target, t.spec FROM workspaces w "
        "LEFT JOIN templates t ON t.name = w.template WHERE w.state IN "
        "('pending', 'starting', 'running', 'stopping')")).all()
    now = datetime.now(UTC)
    for workspace_id, container_id, target, template in rows:
        spec = json.loads(template) if isinstance(template, str) else (template or {})
        op.bulk_insert(instances, [{
            "workspace_id": workspace_id, "started_at": now, "ended_at": None,
            "handle": container_id, "runtime_state": {}, "node": "",
            "spec": {**spec, "migrated": True},
            "endpoints": {"app": target} if target else {}, "devices": [],
        }])


def downgrade() -> None:
    op.drop_index("ux_instances_open", table_name="workspace_instances")
    op.drop_index("ix_instances_workspace", table_name="workspace_instances")
    op.drop_table("workspace_instances")
