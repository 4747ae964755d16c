"""``tests/frameworks`` (LangChain's and LlamaIndex's Qdrant stores) against a real Bastion
on PostgreSQL (the pgvector engine): the same test bodies, only ``live_server`` differs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.frameworks import test_langchain as langchain
from tests.frameworks import test_llamaindex as llamaindex
from tests.support.postgres import fresh_database
from tests.support.server import LiveServer, start_server

pytestmark = langchain.pytestmark


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


store, index = langchain.store, llamaindex.index
for module, prefix in ((langchain, "test_langchain_"), (llamaindex, "test_llamaindex_")):
    for name, value in vars(module).items():
        if name.startswith("test_"):
            globals()[prefix + name[5:]] = value
