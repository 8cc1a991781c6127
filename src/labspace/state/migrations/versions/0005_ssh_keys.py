"""ssh keys: the public keys each user logs in to their workspaces' SSH servers with

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from labspace.state.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssh_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.String(length=16384), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "fingerprint"),
    )
    with op.batch_alter_table("ssh_keys") as batch_op:
        batch_op.create_index("ix_ssh_keys_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("ssh_keys")
