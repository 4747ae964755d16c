"""``tests/dataplane/test_named_vectors.py`` against a real Bastion on PostgreSQL (the
pgvector engine behind the same routes): the same test bodies, only ``live_server``
differs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dataplane import test_named_vectors as named
from tests.support.postgres import fresh_database
from tests.support.server import LiveServer, start_server

pytestmark = named.pytestmark


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


dev, raw, multi = named.dev, named.raw, named.multi
globals().update({name: value for name, value in vars(named).items() if name.startswith("test_")})
