"""single sign-on users: the identity provider's id of the person

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A column and a unique index, both made in place. A unique constraint would make
    # SQLite's batch mode copy and drop the users table, and with foreign keys on, dropping
    # it cascades: every workspace, token and key would be deleted.
    op.add_column("users", sa.Column("subject", sa.String(length=255), nullable=True))
    op.create_index("ix_users_subject", "users", ["subject"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_subject", table_name="users")
    op.drop_column("users", "subject")  # in place too (SQLite 3.35+), for the same reason
