"""``tests/dataplane/test_named_vectors.py`` against a real Bastion on PostgreSQL (the
pgvector engine behind the same routes): the same test bodies, only ``live_server``
differs."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from bastion.storage import Database
from bastion.storage.schema import tenants
from bastion.vectors import EmbeddedEngine, PayloadSelector, SearchQuery, parse_point_id
from bastion.vectors.pgvector import PgVectorEngine
from tests.dataplane import test_named_vectors as named
from tests.dataplane import test_named_vectors_engine as engines
from tests.support.postgres import fresh_database
from tests.support.server import LiveServer, start_server

pytestmark = named.pytestmark


@pytest.fixture(scope="module")
def live_server(
    pgvector_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("bastion-pg") / "data"
    server = start_server(data_dir, env={"BASTION_DATABASE_URL": fresh_database(pgvector_url)})
    try:
        yield LiveServer(server)
    finally:
        server.stop()


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
