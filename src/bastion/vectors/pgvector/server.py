"""The PostgreSQL server the pgvector engine runs on: connection settings, the extension.

Bastion needs pgvector 0.8.0 or newer (its iterative index scans let a filtered search
go on through the graph until it has ``limit`` matches). At start the engine checks
what the server offers, creates the extension when it may, and otherwise stops with a
message that names the version needed and what to do.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import errors
from sqlalchemy.engine import make_url

from bastion.errors import ConfigurationError

MIN_PGVECTOR = (0, 8, 0)
NEEDED = ".".join(str(part) for part in MIN_PGVECTOR)


def conninfo(database_url: str) -> str:
    """libpq's form of a SQLAlchemy URL (``postgresql+psycopg://…`` → ``postgresql://…``)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def version_of(text: str) -> tuple[int, ...]:
    """``0.8.2`` → (0, 8, 2); a suffix (``0.8.0-dev``) is ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-")[0])[:3])


def require_pgvector(*, available: str | None, installed: str | None) -> None:
    """Raise ``ConfigurationError`` unless pgvector ≥ ``MIN_PGVECTOR`` is (or can be) used.

    ``available``: the newest version the server's files offer (None: not installed on
    the server at all); ``installed``: the version created in this database (or None).
    """
    if available is None:
        raise ConfigurationError(
            f"the PostgreSQL server has no pgvector extension: Bastion needs pgvector "
            f"{NEEDED} or newer installed on the database server"
        )
    if installed is not None and version_of(installed) < MIN_PGVECTOR:
        advice = (
            "run ALTER EXTENSION vector UPDATE"
            if version_of(available) >= MIN_PGVECTOR
            else f"install pgvector {NEEDED} or newer on the server, then run "
            "ALTER EXTENSION vector UPDATE"
        )
        raise ConfigurationError(
            f"pgvector {installed} is too old: Bastion needs {NEEDED} or newer ({advice})"
        )
    if installed is None and version_of(available) < MIN_PGVECTOR:
        raise ConfigurationError(
            f"the server offers pgvector {available}: Bastion needs {NEEDED} or newer"
        )


def prepare_database(info: str) -> str:
    """Check pgvector and create the extension if this database lacks it; its version."""
    with psycopg.connect(info, autocommit=True) as conn:
        row = conn.execute(
            "SELECT default_version, installed_version FROM pg_available_extensions "
            "WHERE name = 'vector'"
        ).fetchone()
        available, installed = (row[0], row[1]) if row else (None, None)
        require_pgvector(available=available, installed=installed)
        if installed is None:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except errors.InsufficientPrivilege:
                raise ConfigurationError(
                    "the pgvector extension is not created in this database and Bastion's "
                    "database role may not create it: have a superuser run "
                    "CREATE EXTENSION vector (pgvector "
                    f"{NEEDED} or newer) in the database, or connect as its owner"
                ) from None
            found = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
            installed = str(found[0]) if found else available
        return str(installed)
