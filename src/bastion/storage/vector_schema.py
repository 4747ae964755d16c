"""Tables of the embedded vector engine (collections, points, payload indexes, tombstones).

The engine names them through ``bastion.vectors.schema``; they live here so that the
storage package owns every table and the migrations that create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from bastion.storage.schema import metadata
from bastion.storage.types import UTCDateTime


def _collection_id() -> Column[str]:
    """The owning collection: part of the primary key, gone with the collection."""
    return Column(
        "collection_id",
        String(40),
        ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
    )


collections = Table(
    "collections",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("distance", String(16), nullable=False),  # Cosine | Dot | Euclid
    Column("config", JSON, nullable=False),  # hnsw parameters and the rest of the create body
    Column("created_at", UTCDateTime(), nullable=False),
    # bumped by every write; a saved ANN index records the version it reflects
    Column("version", Integer, nullable=False, server_default="0"),
    # point_tombstones of versions up to this one were dropped (bastion.vectors.peers)
    Column("tombstones_dropped_through", Integer, nullable=False, server_default="0"),
    UniqueConstraint("tenant_id", "name", name="uq_collections_tenant_name"),
)

points = Table(
    "points",
    metadata,
    _collection_id(),
    # storage key (bastion.vectors.ids): 20-digit integer or "u"+UUID; sorts in Qdrant order
    Column("point_id", String(40), primary_key=True),
    Column("seq", Integer, nullable=False),  # slot: the label in the ANN index (reused)
    Column("version", Integer, nullable=False, server_default="0"),  # collection version at write
    Column("vector", LargeBinary, nullable=False),  # float32 little-endian
    Column("payload", JSON),
    UniqueConstraint("collection_id", "seq", name="uq_points_collection_seq"),
)

payload_indexes = Table(
    "payload_indexes",
    metadata,
    _collection_id(),
    Column("field", String(255), primary_key=True),
    Column("schema", String(32), nullable=False),
)

# Deleted points, kept while several worker processes run (bastion.vectors.peers).
point_tombstones = Table(
    "point_tombstones",
    metadata,
    _collection_id(),
    Column("version", Integer, primary_key=True),  # the collection version of the delete
    Column("point_id", String(40), primary_key=True),
)

# Qdrant's collection aliases: another name of a collection, per tenant (bastion.vectors.aliases).
collection_aliases = Table(
    "collection_aliases",
    metadata,
    Column("tenant_id", String(40), ForeignKey("tenants.id"), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("collection", String(255), nullable=False),  # the collection's name
    Column("created_at", UTCDateTime(), nullable=False),
)
