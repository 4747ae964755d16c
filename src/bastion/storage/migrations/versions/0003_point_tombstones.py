"""point tombstones: deleted points, for the other worker processes of a running server

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "point_tombstones",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("point_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("collection_id", "version", "point_id"),
    )


def downgrade() -> None:
    op.drop_table("point_tombstones")
