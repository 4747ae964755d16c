"""webauthn credentials: backup eligibility and authenticator model of each factor

A WebAuthn credential's BE flag is fixed at registration (a device-bound key can reach
aal3, a synced passkey cannot), and a change at sign-in is refused, so it gets its own
column rather than a key inside ``public_data``; the AAGUID lets an administrator find
every key of a model (a vendor advisory). Both are NULL for other factor types.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("factors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backup_eligible", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("aaguid", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("factors", schema=None) as batch_op:
        batch_op.drop_column("aaguid")
        batch_op.drop_column("backup_eligible")
