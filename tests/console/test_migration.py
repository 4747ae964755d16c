"""Migration 0008 (console sessions) only adds its table, and goes away cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from bastion.storage.db import MIGRATIONS, Database


def test_migration_0008_adds_only_the_console_sessions_table(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'bastion.db'}")

    def alembic(action: str, revision: str) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)

    alembic("upgrade", "0007")
    before = set(inspect(database.engine).get_table_names())
    assert "console_sessions" not in before
    alembic("upgrade", "0008")
    assert set(inspect(database.engine).get_table_names()) == before | {"console_sessions"}
    indexes = {index["name"] for index in inspect(database.engine).get_indexes("console_sessions")}
    assert indexes == {"ix_console_sessions_user_id", "ix_console_sessions_expires_at"}
    alembic("downgrade", "0007")
    assert set(inspect(database.engine).get_table_names()) == before
    database.dispose()
