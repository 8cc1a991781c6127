"""failed logins, so the login throttle survives a restart and is shared by every hub

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from labspace.state.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("forgiven", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_failures") as batch_op:
        batch_op.create_index("ix_login_failures_account", ["account", "at"], unique=False)
        batch_op.create_index("ix_login_failures_address", ["address", "at"], unique=False)
        batch_op.create_index("ix_login_failures_at", ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("login_failures")
