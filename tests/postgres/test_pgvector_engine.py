"""What only the pgvector engine has: HNSW in the database, replicas that share it, search
settings per transaction, and a clear stop when the server's pgvector will not do."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psycopg
import pytest
from sqlalchemy import insert

from bastion.errors import ConfigurationError
from bastion.storage import Database
from bastion.storage.schema import tenants
from bastion.vectors import (
    BadRequest,
    CollectionNotFound,
    CollectionSpec,
    Filter,
    HnswParams,
    PayloadSelector,
    PointWrite,
    SearchQuery,
    key_to_id,
    parse_filter,
    parse_point_id,
)
from bastion.vectors.live import LiveCollection
from bastion.vectors.pgvector import PgVectorEngine, require_pgvector
from bastion.vectors.pgvector.rows import default_ef
from bastion.vectors.pgvector.server import conninfo
from tests.support.postgres import fresh_database

T = TypeVar("T")
A = "ten_a"
ACTOR = "usr_pgvector_test"  # who the audit events of these tests name
DIM = 16


@pytest.fixture
def url(pgvector_url: str) -> str:
    url = fresh_database(pgvector_url)
    db = Database(url)
    db.migrate()
    with db.begin() as conn:
        conn.execute(insert(tenants).values(id=A, name=A, created_at=datetime.now(UTC)))
    db.dispose()
    return url


@pytest.fixture
def loop() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def replicas(url: str, loop: asyncio.Runner) -> Iterator[tuple[PgVectorEngine, PgVectorEngine]]:
    """Two engines with their own pools on one database: two replicas' view of it."""
    pair = (PgVectorEngine(Database(url)), PgVectorEngine(Database(url)))
    for engine in pair:
        engine.open()
    yield pair
    for engine in pair:
        loop.run(engine.aclose())
        engine.db.dispose()


def _run(loop: asyncio.Runner, coroutine: Coroutine[Any, Any, T]) -> T:
    return loop.run(coroutine)


def _spec(distance: Any = "Cosine", **hnsw: Any) -> CollectionSpec:
    return CollectionSpec(name="docs", dim=DIM, distance=distance, hnsw=HnswParams(**hnsw))


def _ingest(loop: asyncio.Runner, engine: PgVectorEngine, n: int, **spec: Any) -> np.ndarray:
    _run(loop, engine.create_collection(A, _spec(**spec), actor=ACTOR))
    data = np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32)
    for start in range(0, n, 2000):
        end = min(start + 2000, n)
        writes = [PointWrite(parse_point_id(i), {"n": i}) for i in range(start, end)]
        _run(loop, engine.upsert(A, "docs", writes, data[start:end], actor=ACTOR))
    return data


def _ids(found: list[Any]) -> list[Any]:
    return [key_to_id(hit.key) for hit in found]


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        cur = conn.execute(statement)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@pytest.mark.parametrize(
    ("distance", "opclass"),
    [("Cosine", "vector_ip_ops"), ("Dot", "vector_ip_ops"), ("Euclid", "vector_l2_ops")],
)
def test_each_collection_has_a_vector_table_and_an_hnsw_index_of_its_distance(
    url: str, replicas: Any, loop: asyncio.Runner, distance: str, opclass: str
) -> None:
    one, _ = replicas
    _ingest(loop, one, 300, distance=distance, m=24, ef_construct=80)
    (definition,) = _sql(url, "SELECT indexdef FROM pg_indexes WHERE indexname LIKE '%_hnsw'")[0]
    assert f"USING hnsw (embedding {opclass})" in definition
    assert "m='24'" in definition
    assert "ef_construction='80'" in definition
    (column,) = _sql(
        url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attname = 'embedding' AND attrelid::regclass::text LIKE 'pgv_col_%'",
    )[0]
    assert column == f"vector({DIM})"


def test_a_graph_search_is_answered_by_the_hnsw_index(
    url: str, replicas: Any, loop: asyncio.Runner
) -> None:
    one, _ = replicas
    data = _ingest(loop, one, 3000, full_scan_threshold=0)
    table = _sql(url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'pgv_%'")[0][0]
    vector = "[" + ",".join(str(x) for x in data[0]) + "]"
    plan = _sql(
        url,
        f"EXPLAIN SELECT point_id FROM {table} ORDER BY embedding <#> '{vector}' LIMIT 10",  # noqa: S608
    )
    assert any("Index Scan using" in line[0] and "_hnsw" in line[0] for line in plan)
    found = _run(loop, one.search(A, "docs", SearchQuery(vector=data[0], limit=5)))
    assert _ids(found)[0] == 0


def test_a_write_through_one_replica_is_read_through_the_other_at_once(
    replicas: Any, loop: asyncio.Runner
) -> None:
    one, two = replicas
    data = _ingest(loop, one, 500)
    target = data[7] * -1
    _run(
        loop,
        one.upsert(
            A, "docs", [PointWrite(parse_point_id(7), {"moved": 1})], target[None], actor=ACTOR
        ),
    )
    top = _run(
        loop,
        two.search(A, "docs", SearchQuery(vector=target, limit=1, with_payload=PayloadSelector())),
    )
    assert _ids(top) == [7]
    assert top[0].payload == {"moved": 1}
    assert _run(loop, two.delete_points(A, "docs", keys=[parse_point_id(7)], actor=ACTOR)) == 1
    assert 7 not in _ids(_run(loop, one.search(A, "docs", SearchQuery(vector=target, limit=5))))
    assert _run(loop, one.count(A, "docs", filter=None)) == 499


def test_a_collection_deleted_and_made_anew_by_another_replica_is_the_new_one(
    replicas: Any, loop: asyncio.Runner
) -> None:
    one, two = replicas
    _ingest(loop, one, 50)
    assert _run(loop, two.count(A, "docs", filter=None)) == 50  # ``two`` now knows it
    assert _run(loop, one.delete_collection(A, "docs", actor=ACTOR)) is True
    with pytest.raises(CollectionNotFound):
        _run(loop, two.count(A, "docs", filter=None))
    _ingest(loop, one, 20, distance="Euclid")
    assert _run(loop, two.count(A, "docs", filter=None)) == 20
    info = _run(loop, two.get_collection(A, "docs"))
    assert info.spec.distance == "Euclid"
    assert info.points_count == 20


def test_search_settings_last_one_transaction(url: str, loop: asyncio.Runner) -> None:
    engine = PgVectorEngine(Database(url), pool_size=1)  # one connection: every call's
    engine.open()
    data = _ingest(loop, engine, 2000, full_scan_threshold=0)
    _sql(url, "ANALYZE")  # the estimate says 2,000 points: graph search, with its settings

    async def search_then_show() -> list[str]:
        shown = []
        for ef in (300, None):
            await engine.search(A, "docs", SearchQuery(vector=data[1], limit=10, ef=ef))
            async with engine._connection() as conn:
                cur = await conn.execute("SHOW hnsw.ef_search")
                shown += [str(row[0]) for row in await cur.fetchall()]
        return shown

    try:
        assert _run(loop, search_then_show()) == ["40", "40"]  # pgvector's default: no leak
    finally:
        _run(loop, engine.aclose())
        engine.db.dispose()


def test_a_selective_filter_on_a_large_collection_returns_every_match(
    url: str, replicas: Any, loop: asyncio.Runner
) -> None:
    one, _ = replicas
    data = _ingest(loop, one, 8000, full_scan_threshold=0)
    _sql(url, "ANALYZE")  # the estimate now says 8,000 points: graph search
    rare = parse_filter({"must": [{"key": "n", "range": {"gte": 4000, "lt": 4007}}]})
    found = _run(loop, one.search(A, "docs", SearchQuery(vector=data[0], limit=10, filter=rare)))
    assert sorted(_ids(found)) == list(range(4000, 4007))
    broad = parse_filter({"must": [{"key": "n", "range": {"lt": 6000}}]})
    found = _run(loop, one.search(A, "docs", SearchQuery(vector=data[1], limit=100, filter=broad)))
    assert len(found) == 100
    assert all(i < 6000 for i in _ids(found))
    scores = [hit.score for hit in found]
    assert scores == sorted(scores, reverse=True)


def test_what_postgresql_cannot_hold_is_refused_with_a_clear_400(
    replicas: Any, loop: asyncio.Runner
) -> None:
    one, _ = replicas
    big = CollectionSpec(name="big", dim=2001, distance="Cosine")
    with pytest.raises(BadRequest, match="at most 2000"):
        _run(loop, one.create_collection(A, big, actor=ACTOR))
    _ingest(loop, one, 10)
    vector = np.ones((1, DIM), np.float32)
    with pytest.raises(BadRequest, match="U\\+0000"):
        _run(
            loop,
            one.upsert(
                A, "docs", [PointWrite(parse_point_id(99), {"a\x00": 1})], vector, actor=ACTOR
            ),
        )
    assert _run(loop, one.count(A, "docs", filter=None)) == 10


def test_the_default_breadth_grows_with_the_collection_as_the_embedded_engines() -> None:
    live = LiveCollection(id="c", tenant_id=A, spec=_spec(), created_at=None)
    for count in (0, 50_000, 150_000, 420_000):
        live.slot_of = dict.fromkeys(map(str, range(count)), 0)
        assert default_ef(64, count) == live.default_ef()
    assert default_ef(64, 1_000_000) == 640
    assert default_ef(64, 10_000_000) == 1024  # then pgvector's own limit, 1,000, applies


@pytest.mark.parametrize(
    ("available", "installed", "message"),
    [
        (None, None, "has no pgvector extension: Bastion needs pgvector 0.8.0 or newer"),
        ("0.7.4", None, "offers pgvector 0.7.4: Bastion needs 0.8.0 or newer"),
        ("0.8.2", "0.7.0", "pgvector 0.7.0 is too old: Bastion needs 0.8.0 or newer"),
        ("0.7.4", "0.5.1", "install pgvector 0.8.0 or newer on the server"),
    ],
)
def test_a_server_without_a_recent_pgvector_is_refused_naming_the_version(
    available: str | None, installed: str | None, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        require_pgvector(available=available, installed=installed)


@pytest.mark.parametrize(("available", "installed"), [("0.8.0", None), ("0.8.2", "0.8.0")])
def test_pgvector_080_and_newer_is_accepted(available: str, installed: str | None) -> None:
    require_pgvector(available=available, installed=installed)


def test_a_role_that_may_not_create_the_extension_is_told_what_to_do(pgvector_url: str) -> None:
    url = fresh_database(pgvector_url)
    _sql(url, "CREATE ROLE plain LOGIN")
    plain = url.replace("bastion@", "plain@")
    with pytest.raises(ConfigurationError, match="have a superuser run CREATE EXTENSION vector"):
        PgVectorEngine(Database(plain)).open()
    _sql(url, "CREATE EXTENSION vector")  # once a superuser has: the role can start
    engine = PgVectorEngine(Database(plain))
    engine.open()
    assert engine.pgvector_version is not None


def test_collections_written_by_the_embedded_engine_on_postgresql_are_adopted(
    url: str, loop: asyncio.Runner
) -> None:
    """Before this engine, PostgreSQL held the embedded engine's rows (``points``)."""
    from bastion.vectors import EmbeddedEngine

    old = EmbeddedEngine(Database(url), Path("/nonexistent"), shared=False)
    old.index_dir = Path(tempfile.mkdtemp())
    old.open()
    data = np.random.default_rng(3).normal(size=(30, DIM)).astype(np.float32)
    _run(loop, old.create_collection(A, _spec("Euclid"), actor=ACTOR))
    writes = [PointWrite(parse_point_id(i), {"n": i}) for i in range(30)]
    _run(loop, old.upsert(A, "docs", writes, data, actor=ACTOR))
    old.db.dispose()
    engine = PgVectorEngine(Database(url))
    engine.open()
    try:
        assert _run(loop, engine.count(A, "docs", filter=None)) == 30
        found = _run(
            loop,
            engine.search(
                A, "docs", SearchQuery(vector=data[4], limit=1, with_payload=PayloadSelector())
            ),
        )
        assert _ids(found) == [4]
        assert found[0].payload == {"n": 4}
        assert _sql(url, "SELECT count(*) FROM points") == [(0,)]
    finally:
        _run(loop, engine.aclose())
        engine.db.dispose()


def test_a_filter_too_large_for_one_statement_is_a_400_not_a_server_error(
    replicas: Any, loop: asyncio.Runner
) -> None:
    one, _ = replicas
    _ingest(loop, one, 10)
    wide = {"should": [{"key": f"k{i}", "match": {"any": list(range(16))}} for i in range(1024)]}
    nested = {"should": [wide, wide]}
    with pytest.raises(BadRequest, match="too complex"):  # the filter budget comes first
        parse_filter(nested)
    # Within the budget a parsed filter stays under PostgreSQL's parameter limit; one
    # built in code may not, and is refused all the same.
    half = parse_filter(
        {"should": [{"key": f"k{i}", "match": {"any": list(range(16))}} for i in range(600)]}
    )
    with pytest.raises(BadRequest, match="too large"):
        _run(loop, one.count(A, "docs", filter=Filter(should=(half, half))))


def test_the_graph_search_statement_applies_its_own_settings_before_the_scan(
    url: str, replicas: Any, loop: asyncio.Runner
) -> None:
    """A search is one statement: its ``SET LOCAL`` settings must reach the index scan
    (with the iterative scan off, HNSW returns at most ``ef_search`` rows) and end with it."""
    from pgvector.psycopg import register_vector

    from bastion.vectors.pgvector import queries

    one, _ = replicas
    data = _ingest(loop, one, 3000, distance="Euclid")
    _sql(url, "ANALYZE")  # so the planner prefers the index to a sort of every row
    table = _sql(url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'pgv_%'")[0][0]
    statement = queries.nearest(
        table, "<->", payload=False, vector=False, condition=None, exact=False
    )
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        register_vector(conn)
        for ef in (1, 3, 40):
            settings = {**queries.search_settings(ef, 10), "it": "off", "q": data[0], "n": 10}
            rows = conn.execute(statement, settings, binary=True).fetchall()  # type: ignore[arg-type]
            assert len(rows) == min(ef, 10)
            assert conn.execute("SHOW hnsw.ef_search").fetchone() == ("40",)
        settings = {**queries.search_settings(1, 10), "q": data[0], "n": 10}  # iterative: on
        assert len(conn.execute(statement, settings, binary=True).fetchall()) == 10  # type: ignore[arg-type]


def test_a_libpq_url_selects_the_psycopg_driver(url: str) -> None:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    db = Database(plain)
    try:
        assert db.url == url
        with db.read() as conn:
            assert conn.dialect.driver == "psycopg"
    finally:
        db.dispose()
