"""The database: engine creation (SQLite WAL + foreign keys, or PostgreSQL) and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event

MIGRATIONS = Path(__file__).parent / "migrations"


class CommitThenRaise(Exception):
    """Commit the surrounding write transaction, then raise the wrapped error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # Writers take the lock at BEGIN so two writers queue (busy_timeout) instead of
    # one failing with "database is locked" when it upgrades a read lock.
    write = connection.get_execution_options().get("bastion_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """Owns the engine; ``begin()`` yields a connection inside one transaction."""

    def __init__(self, url: str) -> None:
        scheme, sep, rest = url.partition("://")
        if sep and scheme in ("postgresql", "postgres"):  # libpq's form: Bastion's driver
            url = f"postgresql+psycopg://{rest}"
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"hide_parameters": True}  # errors never echo values
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction (SQLite: takes the write lock up front, so writers queue).

        Raising ``CommitThenRaise(error)`` inside keeps what was written (a failed
        attempt counter, an audit event) and then raises ``error``.
        """
        with self.engine.connect() as connection:
            writer = connection.execution_options(bastion_write=True)
            transaction = writer.begin()
            try:
                yield writer
            except CommitThenRaise as keep:
                transaction.commit()
                raise keep.error from None
            except BaseException:
                transaction.rollback()
                raise
            transaction.commit()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()
