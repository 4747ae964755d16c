"""signing keys in the database: the token and checkpoint keys of PostgreSQL replicas

On PostgreSQL every replica reads the same Ed25519 keys from this table (a rotation on
one is seen by all); each private key is sealed with the master key (AES-256-GCM, bound
to its kid), so a copy of the database alone holds no usable key. The embedded
installation (SQLite) keeps its keys as files in the data folder and leaves this table
empty. Additive: a new table only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bastion.storage.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("sealed_private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_signing_keys_kid")),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
