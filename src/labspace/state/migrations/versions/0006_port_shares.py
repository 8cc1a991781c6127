"""port shares: the ports of a workspace its owner shared with the lab or the public

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from labspace.state.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "port_shares",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(),
                  sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workspace_id", "port"),
    )
    with op.batch_alter_table("port_shares") as batch_op:
        batch_op.create_index("ix_port_shares_workspace_id", ["workspace_id"], unique=False)


def downgrade() -> None:
    op.drop_table("port_shares")
