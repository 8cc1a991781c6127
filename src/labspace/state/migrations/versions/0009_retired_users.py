"""deleted accounts: their uids are never allocated again

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_by", sa.String(length=100), nullable=False),
    )
    op.create_index("ix_retired_users_uid", "retired_users", ["uid"])


def downgrade() -> None:
    op.drop_index("ix_retired_users_uid", table_name="retired_users")
    op.drop_table("retired_users")
