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

from bastion.vectors.engine import CollectionSpec, Distance, VectorParams

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


def build_parameters(spec: CollectionSpec | VectorParams) -> tuple[int, int]:
    """``m`` and ``ef_construction`` within pgvector's limits (Qdrant allows more)."""
    m = min(spec.hnsw.m, MAX_M)
    return m, min(max(spec.hnsw.ef_construct, 2 * m), MAX_EF_CONSTRUCTION)


def column_of(spec: CollectionSpec, params: VectorParams) -> str:
    """The column of a vector: ``embedding`` (the unnamed one), or ``v<i>`` for the i-th
    named vector (names come from input; column names never do)."""
    if not spec.named:
        return "embedding"
    return f"v{spec.named.index(params)}"


def vector_columns(spec: CollectionSpec) -> tuple[str, ...]:
    return tuple(column_of(spec, params) for params in spec.vectors)


def create_statements(table: str, spec: CollectionSpec) -> list[sql.Composed]:
    """The table, then one HNSW index per vector (a named vector's column is NULL for a
    point without it, and such rows are not in its index)."""
    required = sql.SQL("" if spec.named else " NOT NULL")
    columns = sql.SQL(", ").join(
        sql.SQL("{c} vector({dim}){r}").format(
            c=sql.Identifier(column_of(spec, params)), dim=sql.Literal(params.dim), r=required
        )
        for params in spec.vectors
    )
    statements = [
        sql.SQL(
            'CREATE TABLE {t} (point_id text COLLATE "C" PRIMARY KEY, '
            "{columns}, payload jsonb NOT NULL DEFAULT '{{}}')"
        ).format(t=sql.Identifier(table), columns=columns)
    ]
    for params in spec.vectors:
        column = column_of(spec, params)
        m, ef_construction = build_parameters(params)
        statements.append(
            sql.SQL(
                "CREATE INDEX {i} ON {t} USING hnsw ({c} {ops}) "
                "WITH (m = {m}, ef_construction = {ef})"
            ).format(
                i=sql.Identifier(f"{table}_hnsw" if not spec.named else f"{table}_hnsw_{column}"),
                t=sql.Identifier(table),
                c=sql.Identifier(column),
                ops=sql.SQL(METRICS[params.distance].opclass),
                m=sql.Literal(m),
                ef=sql.Literal(ef_construction),
            )
        )
    return statements


def payload_index_statement(table: str) -> sql.Composed:
    """One GIN index over the whole payload serves every exact-value payload index."""
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {i} ON {t} USING gin (payload jsonb_path_ops)"
    ).format(i=sql.Identifier(f"{table}_payload"), t=sql.Identifier(table))


def drop_statement(table: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {t}").format(t=sql.Identifier(table))
