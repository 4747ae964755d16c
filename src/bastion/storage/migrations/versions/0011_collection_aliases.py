"""collection aliases: Qdrant's other names of a collection, per tenant

Additive: a new table only.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bastion.storage.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection_aliases",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("collection", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_collection_aliases_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "alias", name=op.f("pk_collection_aliases")),
    )


def downgrade() -> None:
    op.drop_table("collection_aliases")
