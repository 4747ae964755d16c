"""SQL the risk store shares: an upsert in each dialect's words."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["upsert"]


def upsert(
    conn: Connection,
    table: Table,
    values: Mapping[str, Any],
    keys: Sequence[str],
    updates: Callable[[Any], Mapping[str, Any]],
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE, in the dialect's words (SQLite, PostgreSQL);
    ``updates`` gets the statement's ``excluded`` row."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys), set_=dict(updates(statement.excluded))
        )
    )
