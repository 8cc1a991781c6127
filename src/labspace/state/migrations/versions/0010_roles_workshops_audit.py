"""roles, resource profiles, workshops and the audit log

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: never a batch copy of users (its foreign keys cascade on the drop).
    op.add_column("users", sa.Column("role", sa.String(length=20), nullable=False,
                                     server_default="member"))
    op.add_column("workspaces", sa.Column("profile", sa.String(length=30), nullable=False,
                                          server_default=""))
    op.create_table(
        "workshops",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=30), nullable=False, unique=True),
        sa.Column("created_by", sa.String(length=30), nullable=False),
        sa.Column("instructors", sa.JSON(), nullable=False),
        sa.Column("template", sa.String(length=30), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "workshop_seats",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("workshop_id", sa.Integer(),
                  sa.ForeignKey("workshops.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.String(length=1000), nullable=False),
        sa.Column("link_digest", sa.String(length=64), nullable=False, unique=True),
    )
    op.create_index("ix_workshop_seats_workshop_id", "workshop_seats", ["workshop_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit_events", ["at"])
    op.create_index("ix_audit_actor", "audit_events", ["actor", "id"])
    op.create_index("ix_audit_action", "audit_events", ["action", "id"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_index("ix_workshop_seats_workshop_id", table_name="workshop_seats")
    op.drop_table("workshop_seats")
    op.drop_table("workshops")
    # SQLite 3.35+ drops a column in place (a batch copy of users would cascade on the drop).
    op.drop_column("workspaces", "profile")
    op.drop_column("users", "role")
