"""``tests/frameworks`` (LangChain's and LlamaIndex's Qdrant stores) against a real Bastion
on PostgreSQL (the pgvector engine): the same test bodies, only ``live_server`` differs."""

from __future__ import annotations

from tests.frameworks import test_langchain as langchain
from tests.frameworks import test_llamaindex as llamaindex

pytestmark = langchain.pytestmark


store, index = langchain.store, llamaindex.index
for module, prefix in ((langchain, "test_langchain_"), (llamaindex, "test_llamaindex_")):
    for name, value in vars(module).items():
        if name.startswith("test_"):
            globals()[prefix + name[5:]] = value
