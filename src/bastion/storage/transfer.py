"""Copy every table of one Bastion database into another (``bastion migrate-data``).

The tables are the source's own, enumerated from the database (not a hand-kept list),
and copied in foreign-key order with the schema's column types (``storage.metadata``),
so JSON stays JSON and times stay aware UTC. A table Bastion does not know is refused
rather than left behind. Each table is copied in pages, ordered by its primary key; the
rows keep their keys (audit ``seq``, ids), and PostgreSQL sequences are moved past them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, inspect, select, text

from bastion.errors import ConfigurationError
from bastion.storage import risk_schema, vector_schema
from bastion.storage.schema import metadata

__all__ = ["PAGE", "Copied", "copy_tables", "source_tables"]

PAGE = 2_000
# Alembic's own (the destination is migrated, not copied); SQLite's internal tables.
_NOT_DATA = ("alembic_version",)
_ = (risk_schema, vector_schema)  # their tables are part of ``metadata`` once imported


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


def source_tables(conn: Connection) -> list[Table]:
    """The source's tables, in foreign-key order; ``ConfigurationError`` for one that is
    not Bastion's (copying it would be a guess, leaving it out a loss)."""
    names = {
        name
        for name in inspect(conn).get_table_names()
        if name not in _NOT_DATA and not name.startswith("sqlite_")
    }
    unknown = sorted(names - set(metadata.tables))
    if unknown:
        raise ConfigurationError(
            f"the source database holds tables Bastion does not know: {', '.join(unknown)} "
            "(is it a Bastion database of this version?)"
        )
    return [table for table in metadata.sorted_tables if table.name in names]


def count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def copy_tables(
    source: Connection,
    destination: Connection,
    tables: list[Table],
    *,
    advance: Callable[[str, int], None] = lambda _table, _rows: None,
) -> list[Copied]:
    """Copy ``tables`` (from ``source_tables``) inside the destination's transaction;
    ``advance(table, rows)`` after each page."""
    copied: list[Copied] = []
    for table in tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows = 0
        result = source.execution_options(yield_per=PAGE).execute(select(table).order_by(*order))
        for page in result.partitions(PAGE):
            destination.execute(table.insert(), [dict(row._mapping) for row in page])
            rows += len(page)
            advance(table.name, len(page))
        copied.append(Copied(table.name, rows))
    if destination.dialect.name == "postgresql":
        _move_sequences(destination, tables)
    return copied


def _move_sequences(conn: Connection, tables: list[Table]) -> None:
    """Serial columns whose values were copied: their sequences continue after them."""
    for table in tables:
        for column in table.primary_key.columns:
            sequence = conn.execute(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            ).scalar_one()
            if sequence is None:
                continue
            highest = conn.execute(select(func.max(column))).scalar_one()
            conn.execute(
                text("SELECT setval(:sequence, :value, :called)"),
                {"sequence": sequence, "value": highest or 1, "called": highest is not None},
            )
