"""factor provenance: which session added a factor or a recovery-code sheet, from where

A factor (or a sheet of recovery codes) added in a session must never satisfy that
session's step-up (issue 11.1), and ``/me/factors`` lists when and from where (address,
user agent, session) each was added. ``public_data.enrolled_in_session`` held the session
of a TOTP factor until now: it is copied into the new column.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("factors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_session_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("added_ip", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("added_user_agent", sa.String(length=256), nullable=True))
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_session_id", sa.String(length=40), nullable=True))
    factors = sa.table(
        "factors",
        sa.column("id", sa.String),
        sa.column("public_data", sa.JSON),
        sa.column("added_session_id", sa.String),
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(factors.c.id, factors.c.public_data)).all():
        session_id = (row.public_data or {}).get("enrolled_in_session")
        if isinstance(session_id, str):
            conn.execute(
                sa.update(factors)
                .where(factors.c.id == row.id)
                .values(added_session_id=session_id[:40])
            )


def downgrade() -> None:
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_column("added_session_id")
    with op.batch_alter_table("factors", schema=None) as batch_op:
        batch_op.drop_column("added_user_agent")
        batch_op.drop_column("added_ip")
        batch_op.drop_column("added_session_id")
