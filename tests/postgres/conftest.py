"""Two stateless replicas (separate ``bastion serve`` processes, each with its own empty
data folder) on one PostgreSQL database, shared by the replica test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import fresh_database
from tests.support.replicas import Pair, new_master_key, replica, running
from tests.support.server import LiveServer


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
