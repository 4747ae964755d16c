"""Which engine serves the data plane: the database URL decides."""

from __future__ import annotations

from bastion.clock import Clock
from bastion.config import Settings
from bastion.storage import Database
from bastion.vectors.embedded import EmbeddedEngine
from bastion.vectors.engine import VectorEngine


def build_engine(db: Database, settings: Settings, *, clock: Clock | None = None) -> VectorEngine:
    """SQLite: the embedded engine (rows in SQLite, HNSW in memory). PostgreSQL: the
    pgvector engine (rows and HNSW indexes in the database; replicas hold no state)."""
    if db.is_sqlite:
        return EmbeddedEngine(db, settings.data_dir, settings, clock=clock)
    from bastion.vectors.pgvector import PgVectorEngine  # psycopg: the `postgres` extra

    return PgVectorEngine(db, settings, clock=clock)
