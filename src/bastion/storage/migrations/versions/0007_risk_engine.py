"""risk engine: sign-in history and decisions, remembered devices, address reputation, usage

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:00:00

Additive only: four new tables (bastion.risk.schema), nothing existing is touched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _utc(name: str, *, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, bastion.storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "risk_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        _utc("at", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=True),
        sa.Column("principal_id", sa.String(length=40), nullable=True),
        sa.Column("username_key", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("network", sa.String(length=64), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("radius_km", sa.Float(), nullable=True),
        sa.Column("device_id", sa.String(length=40), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column("decision", sa.String(length=24), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
    )
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_events_principal_id_kind_outcome_at",
            ["principal_id", "kind", "outcome", "at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_risk_events_network_outcome_at", ["network", "outcome", "at"], unique=False
        )
        batch_op.create_index(
            "ix_risk_events_tenant_id_level_at", ["tenant_id", "level", "at"], unique=False
        )
        batch_op.create_index("ix_risk_events_at", ["at"], unique=False)

    op.create_table(
        "risk_devices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("credential_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        _utc("created_at", nullable=False),
        _utc("expires_at", nullable=False),
        _utc("last_used_at"),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        _utc("revoked_at"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_risk_devices_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_devices")),
        sa.UniqueConstraint("credential_hash", name=op.f("uq_risk_devices_credential_hash")),
    )
    with op.batch_alter_table("risk_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_devices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "risk_address_reputation",
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Float(), nullable=False),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("network", name=op.f("pk_risk_address_reputation")),
    )
    with op.batch_alter_table("risk_address_reputation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_risk_address_reputation_updated_at"), ["updated_at"], unique=False
        )

    op.create_table(
        "risk_usage",
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _utc("hour", nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("peak_minute", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("principal_id", "kind", "hour", name=op.f("pk_risk_usage")),
    )
    with op.batch_alter_table("risk_usage", schema=None) as batch_op:
        batch_op.create_index("ix_risk_usage_hour", ["hour"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("risk_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_usage_hour")
    op.drop_table("risk_usage")
    with op.batch_alter_table("risk_address_reputation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_address_reputation_updated_at"))
    op.drop_table("risk_address_reputation")
    with op.batch_alter_table("risk_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_devices_user_id"))
    op.drop_table("risk_devices")
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_events_at")
        batch_op.drop_index("ix_risk_events_tenant_id_level_at")
        batch_op.drop_index("ix_risk_events_network_outcome_at")
        batch_op.drop_index("ix_risk_events_principal_id_kind_outcome_at")
    op.drop_table("risk_events")
