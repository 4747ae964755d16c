"""``tests/dataplane/test_qdrant_calls.py`` against a real Bastion on PostgreSQL (the
pgvector engine behind the same routes): the same test bodies, only ``live_server``
differs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dataplane import test_qdrant_calls as calls
from tests.support.postgres import fresh_database
from tests.support.server import LiveServer, start_server

pytestmark = calls.pytestmark


@pytest.fixture(scope="module")
def live_server(
    pgvector_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("bastion-pg") / "data"
    server = start_server(data_dir, env={"BASTION_DATABASE_URL": fresh_database(pgvector_url)})
    try:
        yield LiveServer(server)
    finally:
        server.stop()


dev, raw, notes, shelf = calls.dev, calls.raw, calls.notes, calls.shelf
globals().update({name: value for name, value in vars(calls).items() if name.startswith("test_")})
