"""One table per collection: ``pgv_<collection id>`` with a ``vector(n)`` column and HNSW.

Why one table per collection and not one partitioned table: a partition must have its
parent's column types, so one table cannot give each collection its own ``vector(n)``;
an untyped ``vector`` column needs a cast in every index and query (measured: no
difference that matters at 20 collections, docs/scale-out.md). A table per collection is
dropped in one statement and keeps its own statistics.

Names come from the collection's server-made id (``col_`` + 32 hex digits), never from
input; numbers in DDL (dimension, ``m``, ``ef_construction``) are validated integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from bastion.vectors.engine import CollectionSpec, Distance

_ID = re.compile(r"^col_[0-9a-f]{32}$")
MAX_INDEXED_DIM = 2000  # pgvector's HNSW indexes ``vector`` columns of up to 2,000 dimensions
MAX_M = 100  # pgvector's limits for the HNSW build parameters
MAX_EF_CONSTRUCTION = 1000


@dataclass(frozen=True)
class Metric:
    """How a distance is indexed and scored: ``score = sign * (embedding <op> query)``."""

    opclass: str
    operator: str
    sign: float


# Cosine vectors are stored unit-length (as Qdrant and the embedded engine do), so the
# inner product *is* the cosine: the same arithmetic as the embedded engine, and a zero
# vector scores 0 instead of cosine's NaN (which ``vector_cosine_ops`` also leaves out of
# the index).
METRICS: dict[Distance, Metric] = {
    "Cosine": Metric("vector_ip_ops", "<#>", -1.0),
    "Dot": Metric("vector_ip_ops", "<#>", -1.0),
    "Euclid": Metric("vector_l2_ops", "<->", 1.0),
}


@dataclass(frozen=True)
class PgCollection:
    """What never changes for a collection's life (the process may keep it)."""

    id: str
    tenant_id: str
    table: str
    spec: CollectionSpec
    created_at: datetime | None


def table_name(collection_id: str) -> str:
    if not _ID.match(collection_id):
        raise ValueError(f"not a collection id: {collection_id!r}")
    return f"pgv_{collection_id}"


def build_parameters(spec: CollectionSpec) -> tuple[int, int]:
    """``m`` and ``ef_construction`` within pgvector's limits (Qdrant allows more)."""
    m = min(spec.hnsw.m, MAX_M)
    return m, min(max(spec.hnsw.ef_construct, 2 * m), MAX_EF_CONSTRUCTION)


def create_statements(table: str, spec: CollectionSpec) -> list[sql.Composed]:
    m, ef_construction = build_parameters(spec)
    return [
        sql.SQL(
            'CREATE TABLE {t} (point_id text COLLATE "C" PRIMARY KEY, '
            "embedding vector({dim}) NOT NULL, payload jsonb NOT NULL DEFAULT '{{}}')"
        ).format(t=sql.Identifier(table), dim=sql.Literal(spec.dim)),
        sql.SQL(
            "CREATE INDEX {i} ON {t} USING hnsw (embedding {ops}) "
            "WITH (m = {m}, ef_construction = {ef})"
        ).format(
            i=sql.Identifier(f"{table}_hnsw"),
            t=sql.Identifier(table),
            ops=sql.SQL(METRICS[spec.distance].opclass),
            m=sql.Literal(m),
            ef=sql.Literal(ef_construction),
        ),
    ]


def payload_index_statement(table: str) -> sql.Composed:
    """One GIN index over the whole payload serves every exact-value payload index."""
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {i} ON {t} USING gin (payload jsonb_path_ops)"
    ).format(i=sql.Identifier(f"{table}_payload"), t=sql.Identifier(table))


def drop_statement(table: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {t}").format(t=sql.Identifier(table))
