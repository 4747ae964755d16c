"""Migrations build exactly the schema the code declares; 0006 (WebAuthn) is additive."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

import bastion.vectors.schema  # noqa: F401  (registers the vector tables)
from bastion.storage.db import MIGRATIONS, Database
from bastion.storage.schema import factors, metadata


def _alembic(db: Database, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_migrations_match_the_declared_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bastion.db'}")
    db.migrate()
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    db.dispose()


def test_webauthn_columns_are_added_without_touching_existing_factors(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bastion.db'}")
    _alembic(db, "upgrade", "0005")
    now = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    with db.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES ('ten_1', 'default', :now)"),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO users (id, tenant_id, username, status, created_at, updated_at) "
                "VALUES ('usr_1', 'ten_1', 'alice', 'active', :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO factors (id, user_id, type, name, status, replay_counter, created_at) "
                "VALUES ('fac_1', 'usr_1', 'totp', 'phone', 'active', 7, :now)"
            ),
            {"now": now},
        )
    _alembic(db, "upgrade", "head")
    columns = {c["name"] for c in inspect(db.engine).get_columns("factors")}
    assert {"backup_eligible", "aaguid"} <= columns
    with db.engine.connect() as connection:
        row = connection.execute(select(factors)).mappings().one()
    assert (row["type"], row["replay_counter"]) == ("totp", 7)
    assert (row["backup_eligible"], row["aaguid"]) == (None, None)
    _alembic(db, "downgrade", "0005")
    assert "backup_eligible" not in {c["name"] for c in inspect(db.engine).get_columns("factors")}
    db.dispose()
