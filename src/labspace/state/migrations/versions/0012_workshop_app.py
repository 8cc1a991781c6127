"""a workshop's instant app: its attendees' link opens the app instead of a workspace

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workshops", sa.Column("app", sa.String(length=30), nullable=True))


def downgrade() -> None:
    op.drop_column("workshops", "app")
