"""Alembic environment: runs on the connection handed in by ``Database.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import bastion.storage.risk_schema  # registers the risk engine's tables
import bastion.storage.vector_schema  # noqa: F401  (registers the vector tables)
from bastion.storage.schema import metadata

target_metadata = metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # `alembic` command line: build an engine from the URL
        url = context.config.get_main_option("sqlalchemy.url")
        assert url is not None
        with create_engine(url).connect() as fresh:
            context.configure(
                connection=fresh, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
            fresh.commit()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    context.run_migrations()


run()
