"""``tests/dataplane/test_named_vectors.py`` against a real Bastion on PostgreSQL (the
pgvector engine behind the same routes): the same test bodies, only ``live_server``
differs."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import insert

from bastion.storage import Database
from bastion.storage.schema import tenants
from bastion.vectors import EmbeddedEngine, PayloadSelector, PointWrite, SearchQuery, parse_point_id
from bastion.vectors.pgvector import PgVectorEngine
from bastion.vectors.pgvector.server import conninfo
from tests.dataplane import test_named_vectors as named
from tests.dataplane import test_named_vectors_engine as engines
from tests.support.postgres import fresh_database

pytestmark = named.pytestmark


dev, raw, multi = named.dev, named.raw, named.multi
globals().update({name: value for name, value in vars(named).items() if name.startswith("test_")})


def test_named_collections_written_by_the_embedded_engine_on_postgresql_are_adopted(
    pgvector_url: str,
) -> None:
    """Before the pgvector engine, PostgreSQL held the embedded engine's rows: a named
    collection's rows (its vectors side by side) become a column per vector."""
    url = fresh_database(pgvector_url)
    db = Database(url)
    db.migrate()
    with db.begin() as conn:
        conn.execute(insert(tenants).values(id=engines.A, name="a", created_at=datetime.now(UTC)))
    old = EmbeddedEngine(db, Path("/nonexistent"), shared=False)
    old.index_dir = Path(tempfile.mkdtemp())
    old.open()
    _text, image = engines.ingest(old)
    db.dispose()
    engine = PgVectorEngine(Database(url))
    engine.open()
    with asyncio.Runner() as loop:  # the engine's connection pool lives on one loop
        try:
            query = SearchQuery(vector=image[4], using="image", limit=engines.N)
            found = engines.ids(loop.run(engine.search(engines.A, "multi", query)))
            assert found[0] == 4
            assert 3 not in found  # it had no image
            lacking = loop.run(
                engine.retrieve(engines.A, "multi", [parse_point_id(3)],
                                with_payload=PayloadSelector(), with_vector=True)
            )  # fmt: skip
            assert set(lacking[0].vector or {}) == {"text"}
        finally:
            loop.run(engine.aclose())
            engine.db.dispose()


def test_each_named_vector_has_its_own_hnsw_index_which_answers_its_searches(
    pgvector_url: str,
) -> None:
    url = fresh_database(pgvector_url)
    db = Database(url)
    db.migrate()
    with db.begin() as conn:
        conn.execute(insert(tenants).values(id=engines.A, name="a", created_at=datetime.now(UTC)))
    db.dispose()
    engine = PgVectorEngine(Database(url))
    engine.open()
    with asyncio.Runner() as loop:
        try:
            spec = engines.named_spec(exact_below_kib=0)
            loop.run(engine.create_collection(engines.A, spec, actor=engines.ACTOR))
            rng = np.random.default_rng(5)
            image = rng.normal(size=(3000, engines.IMAGE)).astype(np.float32)
            text = rng.normal(size=(3000, engines.TEXT)).astype(np.float32)
            writes = [PointWrite(parse_point_id(i), None) for i in range(3000)]
            vectors = [{"image": image[i], "text": text[i]} for i in range(3000)]
            loop.run(engine.upsert(engines.A, "multi", writes, vectors, actor=engines.ACTOR))
            with psycopg.connect(conninfo(url), autocommit=True) as conn:
                indexes = dict(
                    conn.execute(
                        "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%hnsw%'"
                    ).fetchall()
                )
                assert len(indexes) == 2
                image_index = next(d for d in indexes.values() if "(v0 vector_l2_ops)" in d)
                assert "m='8'" in image_index  # image's own hnsw_config
                assert any("(v1 vector_ip_ops)" in d for d in indexes.values())  # text: Cosine
                table = next(iter(indexes.values())).split(" ON ")[1].split(" ")[0]
                conn.execute(f"ANALYZE {table}")
                probe = "[" + ",".join(str(x) for x in image[0]) + "]"
                plan = conn.execute(
                    f"EXPLAIN SELECT point_id FROM {table} WHERE v0 IS NOT NULL "  # noqa: S608
                    f"ORDER BY v0 <-> '{probe}' LIMIT 10"
                ).fetchall()
            assert any("Index Scan using" in line[0] and "_hnsw_v0" in line[0] for line in plan)
            query = SearchQuery(vector=image[0], using="image", limit=3)
            assert engines.ids(loop.run(engine.search(engines.A, "multi", query)))[0] == 0
        finally:
            loop.run(engine.aclose())
            engine.db.dispose()
