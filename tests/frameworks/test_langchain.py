"""LangChain's ``QdrantVectorStore`` (langchain-qdrant), unchanged, against a real Bastion:
its default flows with deterministic fake embeddings (``tests/frameworks/words.py``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_qdrant import QdrantVectorStore
from qdrant_client import models

from tests.frameworks.words import LIBRARY, embed
from tests.support.server import LiveServer

pytestmark = [
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


class Words(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed(text)


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


@pytest.fixture(scope="module")
def store(live_server: LiveServer) -> QdrantVectorStore:
    """``from_texts``: LangChain creates the collection (``{"vectors": {"": …},
    "sparse_vectors": {}}``) and adds the texts with their metadata."""
    token = live_server.token(role="developer")
    texts, metadatas = zip(*LIBRARY[:5], strict=True)
    return QdrantVectorStore.from_texts(
        list(texts),
        embedding=Words(),
        metadatas=list(metadatas),
        ids=ids(5),
        collection_name="lc_library",
        url=live_server.url,
        auth_token_provider=lambda: token,
        check_compatibility=False,
    )


def contents(found: list[Any]) -> list[str]:
    return [doc.page_content for doc in found]


def test_from_texts_creates_the_collection(store: QdrantVectorStore) -> None:
    info = store.client.get_collection("lc_library")
    assert info.points_count == 5
    assert contents(store.similarity_search("cats purr in the sun", k=1))[0].startswith("cats purr")


def test_add_documents_with_metadata_and_filter(store: QdrantVectorStore) -> None:
    added = store.add_documents(
        [Document(page_content=text, metadata=meta) for text, meta in LIBRARY[5:]],
        ids=ids(7)[5:],
    )
    assert len(added) == 2
    news = models.Filter(
        must=[models.FieldCondition(key="metadata.source", match=models.MatchValue(value="news"))]
    )
    found = store.similarity_search("in the park", k=3, filter=news)
    assert {doc.metadata["source"] for doc in found} == {"news"}
    assert contents(found)[0] == "rain is expected in the park on monday"
    scored = store.similarity_search_with_score("cats hunt mice at night", k=2)
    assert scored[0][0].page_content == "cats hunt mice at night"
    assert scored[0][1] == pytest.approx(1.0, abs=1e-3)


def test_max_marginal_relevance_search_diversifies(store: QdrantVectorStore) -> None:
    query = "cats purr and sleep in the sun"
    plain = contents(store.similarity_search(query, k=3))
    assert all(text.startswith("cats purr and sleep") for text in plain)  # the near-duplicates
    # langchain-qdrant 1.1 sends lambda_mult as Qdrant's ``diversity`` (1: most diverse)
    diverse = contents(store.max_marginal_relevance_search(query, k=3, fetch_k=7, lambda_mult=0.9))
    assert diverse[0] in plain
    assert sum(text.startswith("cats purr and sleep") for text in diverse) < 3


def test_retriever(store: QdrantVectorStore) -> None:
    retriever = store.as_retriever(search_kwargs={"k": 2})
    found = retriever.invoke("dogs fetch sticks")
    assert contents(found)[0] == "dogs bark and fetch sticks in the park"
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 5})
    assert len(mmr.invoke("cats")) == 2


def test_delete(store: QdrantVectorStore) -> None:
    doomed = ids(5)[3]  # the dogs
    assert store.delete(ids=[doomed])
    assert store.get_by_ids([doomed]) == []
    assert "dogs" not in " ".join(contents(store.similarity_search("dogs fetch sticks", k=7)))
