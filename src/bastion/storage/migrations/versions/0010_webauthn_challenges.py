"""webauthn challenges: registrations and passkey sign-ins in progress

A WebAuthn challenge is single use, bound to the user (registration) or to a passkey
sign-in transaction, and expires after five minutes; it is stored so that every worker
and replica sees the same one (a challenge answered on replica A is gone on replica B).
Challenges of a second factor or a step-up live in ``login_transactions.challenge``.
Additive: a new table only.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bastion.storage.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webauthn_challenges",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("session_id", sa.String(length=40), nullable=True),
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_challenges")),
        sa.UniqueConstraint("challenge", name=op.f("uq_webauthn_challenges_challenge")),
    )
    with op.batch_alter_table("webauthn_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webauthn_challenges_user_id"), ["user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webauthn_challenges_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("webauthn_challenges")
