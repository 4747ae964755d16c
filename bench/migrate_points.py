"""``bastion migrate-data``'s point move measured (docs/scale-out.md): one collection of
20,000 points (``bench.data``, 384 dimensions, Cosine, default HNSW m=16 /
ef_construct=100) written into its pgvector table inside one transaction, the HNSW index
built after the rows (what ``vectors.pgvector.adopt.move_points`` does) or created
before them (the graph grown row by row). A throwaway PostgreSQL with durable settings.

``python -m bench.migrate_points [points] [dim]``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb
from tests.support.postgres import fresh_database, postgres_cluster

from bastion.storage import Database
from bastion.vectors.engine import CollectionSpec
from bastion.vectors.pgvector.adopt import StoredCollection, StoredPoint, move_points
from bastion.vectors.pgvector.server import conninfo, prepare_database
from bastion.vectors.pgvector.tables import create_statements, table_name
from bench.data import make_dataset

COLLECTION = "col_" + "1" * 32
PAGE = 2_000


def _pages(vectors: np.ndarray) -> Iterator[list[StoredPoint]]:
    for start in range(0, len(vectors), PAGE):
        yield [
            (f"{n:020d}", vectors[n].astype("<f4").tobytes(), {"n": n})
            for n in range(start, min(start + PAGE, len(vectors)))
        ]


def _database(cluster: str) -> str:
    url = fresh_database(cluster)
    db = Database(url)
    db.migrate()
    db.dispose()
    info = conninfo(url)
    prepare_database(info)
    return info


def after(info: str, vectors: np.ndarray) -> tuple[float, float]:
    """(seconds for the rows, seconds for the index): ``move_points`` as migrate-data."""
    stored: StoredCollection = (COLLECTION, "bench", vectors.shape[1], "Cosine", None)
    marks: list[float] = []
    with psycopg.connect(info) as conn:
        start = time.perf_counter()
        move_points(
            conn, stored, _pages(vectors), indexing=lambda: marks.append(time.perf_counter())
        )
        conn.commit()
        end = time.perf_counter()
    return marks[0] - start, end - marks[0]


def before(info: str, vectors: np.ndarray) -> tuple[float, float]:
    """The index created on the empty table, then the same rows inserted: (0, seconds)."""
    spec = CollectionSpec.stored("bench", vectors.shape[1], "Cosine", None)
    table = table_name(COLLECTION)
    insert = sql.SQL("INSERT INTO {} (point_id, embedding, payload) VALUES (%s, %b, %s)").format(
        sql.Identifier(table)
    )
    with psycopg.connect(info) as conn:
        register_vector(conn)
        start = time.perf_counter()
        for statement in create_statements(table, spec):
            conn.execute(statement)
        for page in _pages(vectors):
            with conn.cursor() as cur:
                cur.executemany(
                    insert,
                    [(key, np.frombuffer(blob, "<f4"), Jsonb(p)) for key, blob, p in page],
                )
        conn.commit()
        end = time.perf_counter()
    return 0.0, end - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 384
    vectors = make_dataset(n=n, dim=dim, queries=1).vectors
    print(f"{n:,} points x {dim} dimensions, one transaction each")
    with postgres_cluster(durable=True, shared_buffers="1GB") as cluster:
        for round_ in (1, 2):
            for way, run in (("index after the rows", after), ("index before the rows", before)):
                rows, index = run(_database(cluster), vectors)
                print(f"round {round_}: {way}: {rows + index:.1f} s (rows {rows:.1f} s, "
                      f"index {index:.1f} s)" if rows else
                      f"round {round_}: {way}: {index:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
