"""The database: engine creation (SQLite WAL + foreign keys, or PostgreSQL) and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext

from bastion.storage.redact import redact_database_errors

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_lock key of start-up ("bastion:start" folded into 63 bits); the audit
# chain's key (``audit.log.ADVISORY_LOCK_KEY``) is another.
STARTUP_LOCK_KEY = 0x62617374696F6E3A


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


def _redact(context: ExceptionContext) -> None:
    """Every database error loses the values it quotes before anyone sees it
    (``storage.redact``)."""
    redact_database_errors(context.sqlalchemy_exception)
    redact_database_errors(context.original_exception)


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
        event.listen(self.engine, "handle_error", _redact)
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

    @contextmanager
    def startup_lock(self) -> Iterator[None]:
        """Held while this process migrates the schema or creates what a new installation
        needs (signing keys, the default tenant, the first admin, the pgvector extension).

        On PostgreSQL a transaction advisory lock, so that of several replicas started
        together on an empty database one does the work and the others, waiting, find it
        done. It is held by a transaction of its own that stays open until the work is done
        (the work runs on other connections): it is released when that transaction ends,
        also when the process dies, and through pgbouncer in transaction mode that
        transaction keeps one server connection. On SQLite nothing: one server holds the
        data folder (``datadir.lock_for_server``) and SQLite serialises writers.
        """
        if self.is_sqlite:
            yield
            return
        with self.engine.connect() as connection, connection.begin():
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": STARTUP_LOCK_KEY}
            )
            yield

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
