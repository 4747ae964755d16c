"""A collection's points moved into its vector table ``pgv_<id>``: created, filled,
indexed (HNSW after the rows, which is faster than growing the graph row by row:
docs/scale-out.md), inside the caller's transaction.

Two callers. ``bastion migrate-data`` moves an embedded installation's points (float32
blobs in SQLite's ``points`` table) straight into their vector tables, in the same
transaction as every other table: a failure leaves nothing. And collections written on
PostgreSQL before the pgvector engine (by the embedded engine, whose points sit in the
shared ``points`` table) get their vector table at a replica's first start, in one
transaction each, the old rows removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from bastion.vectors.engine import CollectionSpec, Distance
from bastion.vectors.live import INDEXED_SCHEMAS
from bastion.vectors.pgvector.tables import (
    column_of,
    create_statements,
    payload_index_statement,
    table_name,
)

__all__ = ["StoredCollection", "adopt_collections", "collections_to_move", "move_points"]

log = logging.getLogger("bastion.vectors")
_BATCH = 1000

# (id, name, dim, distance, config): a ``collections`` row.
StoredCollection = tuple[str, str, int, Distance, Any]
# (point_id, float32 blob, payload): a ``points`` row as the embedded engine stores it.
StoredPoint = tuple[str, bytes, Any]

_WITHOUT_TABLE = (
    "SELECT id, name, dim, distance, config FROM collections "
    "WHERE to_regclass('pgv_' || id) IS NULL ORDER BY id"
)
_INDEXED_PAYLOAD = 'SELECT 1 FROM payload_indexes WHERE collection_id = %s AND "schema" = ANY(%s)'


def collections_to_move(conn: psycopg.Connection[Any]) -> list[StoredCollection]:
    """The collections without a vector table, in id order."""
    return [tuple(row) for row in conn.execute(_WITHOUT_TABLE).fetchall()]


def adopt_collections(info: str) -> int:
    """Give every collection without a vector table one; how many were adopted."""
    with psycopg.connect(info) as conn:
        register_vector(conn)
        migrated = conn.execute("SELECT to_regclass('collections') IS NOT NULL").fetchone()
        if not (migrated and migrated[0]):  # nothing written yet (no schema)
            return 0
        rows = collections_to_move(conn)
        conn.commit()
        for row in rows:
            _adopt(conn, row)
            conn.commit()
    return len(rows)


def _adopt(conn: psycopg.Connection[Any], row: StoredCollection) -> None:
    with conn.cursor(name="legacy_points") as cursor:
        cursor.execute(
            "SELECT point_id, vector, payload FROM points WHERE collection_id = %s", (row[0],)
        )
        moved = move_points(conn, row, iter(lambda: cursor.fetchmany(_BATCH), []))
    conn.execute("DELETE FROM points WHERE collection_id = %s", (row[0],))
    log.info("collection %s: %d points moved into its pgvector table", row[1], moved)


def move_points(
    conn: psycopg.Connection[Any],
    collection: StoredCollection,
    batches: Iterable[Sequence[StoredPoint]],
    *,
    advance: Callable[[int], None] = lambda _rows: None,
    indexing: Callable[[], None] = lambda: None,
) -> int:
    """Create ``collection``'s vector table in ``conn``'s transaction, insert ``batches``
    of its points (``advance(rows)`` after each), then build its indexes (``indexing()``
    before); how many points were moved. A PostgreSQL refusal raises ``psycopg.Error``
    and the caller's transaction is to be rolled back."""
    if conn.adapters.types.get("vector") is None:
        register_vector(conn)
    collection_id, name, dim, distance, config = collection
    table = table_name(collection_id)
    spec = CollectionSpec.stored(name, dim, distance, config)
    statements = create_statements(table, spec)
    conn.execute(statements[0])  # the table; the indexes after the rows (faster)
    columns = [column_of(spec, params) for params in spec.vectors]
    insert = sql.SQL("INSERT INTO {} (point_id, {}, payload) VALUES (%s, {}, %s)").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(column) for column in columns),
        sql.SQL(", ").join(sql.SQL("%b") for _ in columns),
    )
    moved = 0
    for batch in batches:
        with conn.cursor() as cur:
            cur.executemany(
                insert,
                [
                    (key, *_split(spec, np.frombuffer(blob, dtype="<f4")), Jsonb(payload or {}))
                    for key, blob, payload in batch
                ],
            )
        moved += len(batch)
        advance(len(batch))
    indexing()
    for index in statements[1:]:
        conn.execute(index)
    if conn.execute(_INDEXED_PAYLOAD, (collection_id, list(INDEXED_SCHEMAS))).fetchone():
        conn.execute(payload_index_statement(table))  # as create_payload_index makes it
    return moved


def _split(spec: CollectionSpec, row: Any) -> list[Any]:
    """A stored row's vectors, one per column (None: a named vector the point lacks)."""
    if not spec.named:
        return [row]
    out: list[Any] = []
    for params in spec.named:
        block = row[params.offset : params.offset + params.dim]
        out.append(None if np.isnan(block[0]) else block)
    return out
