"""Tables of the risk engine, on the installation's one ``metadata`` (migration 0007).

The storage package owns every table and the migrations that create them; the engine
names these through ``bastion.risk.schema``, and only ``risk.store`` reads and writes them.
Principal ids are not foreign keys: a row may name a service account (``sa_…``), and an
attempt for an unknown username has none.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from bastion.storage.schema import metadata
from bastion.storage.types import UTCDateTime

__all__ = ["risk_address_reputation", "risk_devices", "risk_events", "risk_usage"]

# One row per scored sign-in attempt (kind "login": the history the signals read) and per
# continuous-evaluation decision above "allow" (kind "session").
risk_events = Table(
    "risk_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),  # login | session
    Column("outcome", String(16), nullable=False),  # success failure denied challenge forgiven
    Column("tenant_id", String(40)),
    Column("principal_id", String(40)),  # null: the username matched no user
    Column("username_key", String(64)),  # keyed fingerprint of the typed username
    Column("ip", String(64)),
    Column("network", String(64)),  # the address (IPv4) or its /64 (IPv6)
    Column("country", String(2)),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("radius_km", Float),
    Column("device_id", String(40)),  # a recognised remembered device
    Column("score", Integer),
    Column("level", String(8)),  # low | medium | high
    Column("decision", String(24)),  # allow | second_factor | phishing_resistant | deny
    Column("reasons", JSON, nullable=False),  # [{"reason", "weight", …facts}]
    Index("ix_risk_events_principal_id_kind_outcome_at", "principal_id", "kind", "outcome", "at"),
    Index("ix_risk_events_network_outcome_at", "network", "outcome", "at"),
    Index("ix_risk_events_tenant_id_level_at", "tenant_id", "level", "at"),
    Index("ix_risk_events_at", "at"),
)

# "Remember this device": only the SHA-256 of the credential is stored.
risk_devices = Table(
    "risk_devices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False, index=True),
    Column("credential_hash", String(64), nullable=False, unique=True),
    Column("name", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime()),
    Column("last_ip", String(64)),
    Column("revoked_at", UTCDateTime()),
)

# Failed sign-ins per network as a count that halves every half-life: O(1) to read and
# to update, however long the memory.
risk_address_reputation = Table(
    "risk_address_reputation",
    metadata,
    Column("network", String(64), primary_key=True),
    Column("failures", Float, nullable=False),  # as of updated_at
    Column("updated_at", UTCDateTime(), nullable=False, index=True),
)

# Data-plane volume per principal, kind and hour: total points and the busiest minute.
risk_usage = Table(
    "risk_usage",
    metadata,
    Column("principal_id", String(40), primary_key=True),
    Column("kind", String(16), primary_key=True),  # query | scroll | export
    Column("hour", UTCDateTime(), primary_key=True),
    Column("total", BigInteger, nullable=False),
    Column("peak_minute", BigInteger, nullable=False),
    Index("ix_risk_usage_hour", "hour"),
)
