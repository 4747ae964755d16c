"""Fixtures of the PostgreSQL tests: ``live_server``, a real Bastion on its own
PostgreSQL database (one per module: the embedded engine's HTTP test bodies run against
it), and two stateless replicas (separate ``bastion serve`` processes, each with its own
empty data folder) on one database, shared by the replica test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import fresh_database
from tests.support.replicas import Pair, new_master_key, replica, running
from tests.support.server import LiveServer, start_server


@pytest.fixture(scope="package")
def pair(pgvector_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Started once for every module of this package that asks for it (a start costs
    seconds); each test makes its own users and collections."""
    root = tmp_path_factory.mktemp("replicas")
    url = fresh_database(pgvector_url)
    key = new_master_key()
    servers = [replica(root, name, url, key) for name in ("a", "b")]
    with running(servers):
        yield Pair(url, key, LiveServer(servers[0]), LiveServer(servers[1]), root)


@pytest.fixture(scope="module")
def live_server(
    pgvector_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A real ``bastion serve`` on its own PostgreSQL database (pgvector engine), in place
    of the embedded one the data-plane test bodies were written against."""
    data_dir = tmp_path_factory.mktemp("bastion-pg") / "data"
    server = start_server(data_dir, env={"BASTION_DATABASE_URL": fresh_database(pgvector_url)})
    try:
        yield LiveServer(server)
    finally:
        server.stop()
