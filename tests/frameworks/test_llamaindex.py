"""LlamaIndex's Qdrant store (llama-index-vector-stores-qdrant), unchanged, against a real
Bastion: its default dense flows with deterministic fake embeddings and a whitespace
tokenizer (``tests/frameworks/words.py``: no model, no download)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores import ExactMatchFilter, MetadataFilters
from llama_index.vector_stores.qdrant import QdrantVectorStore
from qdrant_client import AsyncQdrantClient, QdrantClient

from tests.frameworks.words import LIBRARY, embed
from tests.support.server import LiveServer

pytestmark = [
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


class Words(BaseEmbedding):
    def _get_query_embedding(self, query: str) -> list[float]:
        return embed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return embed(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return embed(query)


@pytest.fixture(scope="module")
def index(live_server: LiveServer) -> Iterator[VectorStoreIndex]:
    token = live_server.token(role="developer")
    options: dict[str, Any] = {
        "url": live_server.url,
        "auth_token_provider": lambda: token,
        "check_compatibility": False,
    }
    client, aclient = QdrantClient(**options), AsyncQdrantClient(**options)
    store = QdrantVectorStore(collection_name="li_library", client=client, aclient=aclient)
    documents = [
        Document(text=text, metadata=meta, doc_id=f"doc-{meta['n']}") for text, meta in LIBRARY[:5]
    ]
    built = VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=Words(),
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=0, tokenizer=str.split)],
    )
    yield built
    client.close()


def texts(found: list[Any]) -> list[str]:
    return [item.node.get_content() for item in found]


def test_from_documents_creates_and_fills_the_collection(index: VectorStoreIndex) -> None:
    client = index.vector_store.client  # type: ignore[attr-defined]
    assert client.count("li_library").count == 5
    found = index.as_retriever(similarity_top_k=2).retrieve("cats hunt mice at night")
    assert texts(found)[0] == "cats hunt mice at night"  # (embedded with its metadata)
    assert (found[0].score or 0) > (found[1].score or 0)


def test_insert_with_metadata_and_filtered_retrieval(index: VectorStoreIndex) -> None:
    for text, meta in LIBRARY[5:]:
        index.insert(Document(text=text, metadata=meta, doc_id=f"doc-{meta['n']}"))
    news = MetadataFilters(filters=[ExactMatchFilter(key="source", value="news")])
    found = index.as_retriever(similarity_top_k=3, filters=news).retrieve("in the park")
    assert {item.node.metadata["source"] for item in found} == {"news"}
    assert texts(found)[0] == "rain is expected in the park on monday"


def test_async_retrieval(index: VectorStoreIndex) -> None:
    import asyncio

    found = asyncio.run(index.as_retriever(similarity_top_k=2).aretrieve("dogs fetch sticks"))
    assert texts(found)[0] == "dogs bark and fetch sticks in the park"


def test_delete_by_document(index: VectorStoreIndex) -> None:
    index.delete_ref_doc("doc-4")
    found = index.as_retriever(similarity_top_k=7).retrieve("dogs fetch sticks")
    assert all("dogs" not in text for text in texts(found))
