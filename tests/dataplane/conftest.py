"""Engine fixtures: a real SQLite database (migrated) and the embedded engine on it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert

from bastion.storage import Database
from bastion.storage.schema import tenants
from bastion.vectors import EmbeddedEngine

T = TypeVar("T")
TENANTS = ("ten_a", "ten_b")
ACTOR = "usr_engine_test"  # who the audit events of the engine tests name


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def open_engine(data_dir: Path) -> EmbeddedEngine:
    engine = EmbeddedEngine(Database(f"sqlite:///{data_dir / 'bastion.db'}"), data_dir)
    engine.open()
    return engine


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    db = Database(f"sqlite:///{tmp_path / 'bastion.db'}")
    db.migrate()
    with db.begin() as conn:
        for tenant in TENANTS:
            conn.execute(
                insert(tenants).values(id=tenant, name=tenant, created_at=datetime.now(UTC))
            )
    db.dispose()
    return tmp_path


@pytest.fixture
def engine(data_dir: Path) -> Iterator[EmbeddedEngine]:
    engine = open_engine(data_dir)
    yield engine
    engine.db.dispose()
