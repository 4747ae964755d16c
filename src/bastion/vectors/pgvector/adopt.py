"""Collections written on PostgreSQL before the pgvector engine (by the embedded engine,
whose points sit in the shared ``points`` table as float32 blobs) get their vector table
at the first start: created, filled from those rows, indexed, and the old rows removed,
in one transaction each.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from bastion.vectors.engine import CollectionSpec
from bastion.vectors.pgvector.tables import column_of, create_statements, table_name

log = logging.getLogger("bastion.vectors")
_BATCH = 1000

_WITHOUT_TABLE = (
    "SELECT id, name, dim, distance, config FROM collections "
    "WHERE to_regclass('pgv_' || id) IS NULL ORDER BY id"
)


def adopt_collections(info: str) -> int:
    """Give every collection without a vector table one; how many were adopted."""
    with psycopg.connect(info) as conn:
        register_vector(conn)
        migrated = conn.execute("SELECT to_regclass('collections') IS NOT NULL").fetchone()
        if not (migrated and migrated[0]):  # nothing written yet (no schema)
            return 0
        rows = conn.execute(_WITHOUT_TABLE).fetchall()
        conn.commit()
        for row in rows:
            _adopt(conn, row)
            conn.commit()
    return len(rows)


def _adopt(conn: psycopg.Connection[Any], row: Any) -> None:
    collection_id, name, dim, distance, config = row
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
    with conn.cursor(name="legacy_points") as points:
        points.execute(
            "SELECT point_id, vector, payload FROM points WHERE collection_id = %s",
            (collection_id,),
        )
        while batch := points.fetchmany(_BATCH):
            with conn.cursor() as cur:
                cur.executemany(
                    insert,
                    [
                        (key, *_split(spec, np.frombuffer(blob, dtype="<f4")), Jsonb(payload or {}))
                        for key, blob, payload in batch
                    ],
                )
            moved += len(batch)
    for index in statements[1:]:
        conn.execute(index)
    conn.execute("DELETE FROM points WHERE collection_id = %s", (collection_id,))
    log.info("collection %s: %d points moved into its pgvector table", name, moved)


def _split(spec: CollectionSpec, row: Any) -> list[Any]:
    """A stored row's vectors, one per column (None: a named vector the point lacks)."""
    if not spec.named:
        return [row]
    out: list[Any] = []
    for params in spec.named:
        block = row[params.offset : params.offset + params.dim]
        out.append(None if np.isnan(block[0]) else block)
    return out
