"""directory users: a primary gid of their own, where an account comes from, its groups

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("gid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=20), nullable=False,
                                      server_default="local"))
        batch_op.add_column(sa.Column("groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("groups")
        batch_op.drop_column("source")
        batch_op.drop_column("gid")
