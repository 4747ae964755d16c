"""Engine fixtures: a real SQLite database (migrated) and the embedded engine on it, or a
real PostgreSQL (with pgvector) and the pgvector engine on it.

Every test that takes ``engine`` runs once per engine kind (a module may narrow that
with ``ENGINE_KINDS``): the same filters, the same bad input, the same results.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert, select

from bastion.storage import Database
from bastion.storage.schema import tenants
from bastion.vectors import EmbeddedEngine, VectorEngine
from bastion.vectors.pgvector import PgVectorEngine
from bastion.vectors.schema import collections
from tests.support.postgres import fresh_database

T = TypeVar("T")
TENANTS = ("ten_a", "ten_b")
ACTOR = "usr_engine_test"  # who the audit events of the engine tests name
ENGINE_KINDS = ("embedded", "pgvector")
_loop: tuple[threading.Thread, asyncio.Runner] | None = None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on the test's event loop (the pgvector engine's connection pool lives on it);
    from another thread, on a loop of its own."""
    if _loop is not None and _loop[0] is threading.current_thread():
        return _loop[1].run(coroutine)
    return asyncio.run(coroutine)


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[None]:
    global _loop
    with asyncio.Runner() as runner:
        _loop = (threading.current_thread(), runner)
        try:
            yield
        finally:
            _loop = None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        kinds = getattr(metafunc.module, "ENGINE_KINDS", ENGINE_KINDS)
        metafunc.parametrize("engine", kinds, indirect=True)


def open_engine(data_dir: Path) -> EmbeddedEngine:
    engine = EmbeddedEngine(Database(f"sqlite:///{data_dir / 'bastion.db'}"), data_dir)
    engine.open()
    return engine


def _add_tenants(db: Database) -> None:
    with db.begin() as conn:
        for tenant in TENANTS:
            conn.execute(
                insert(tenants).values(id=tenant, name=tenant, created_at=datetime.now(UTC))
            )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    db = Database(f"sqlite:///{tmp_path / 'bastion.db'}")
    db.migrate()
    _add_tenants(db)
    db.dispose()
    return tmp_path


@pytest.fixture(scope="session")
def pgvector_database(pgvector_url: str) -> str:
    """One migrated database with the test tenants for the engine tests (each test
    leaves it without collections)."""
    url = fresh_database(pgvector_url)
    db = Database(url)
    db.migrate()
    _add_tenants(db)
    db.dispose()
    return url


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[VectorEngine]:
    if request.param == "embedded":
        embedded = open_engine(request.getfixturevalue("data_dir"))
        yield embedded
        embedded.db.dispose()
        return
    db = Database(request.getfixturevalue("pgvector_database"))
    engine = PgVectorEngine(db)
    engine.open()
    try:
        yield engine
    finally:
        with db.read() as conn:
            made = conn.execute(select(collections.c.tenant_id, collections.c.name)).all()
        for tenant_id, name in made:
            run(engine.delete_collection(tenant_id, name, actor=ACTOR))
        run(engine.aclose())
        db.dispose()
