"""A zero vector in a Cosine collection (issue 11, item 14), against a real server.

A zero vector has no direction: its cosine similarity to anything is 0 / 0. It used to
be stored as it came and score 0 against every query, and a zero query vector was
searched too. Both are now refused with a 400 in Qdrant's envelope, on both engines;
other distances, and tiny vectors that are not zero, are still accepted.
"""

from __future__ import annotations

import pytest
from tests.security.conftest import DataPlane, qdrant_error


def test_zero_vector_upsert_into_cosine_collection_is_refused(dataplane: DataPlane) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http, distance="Cosine")
        points = [
            {"id": 1, "vector": [1, 0, 0, 0]},
            {"id": 2, "vector": [0, 0, 0, 0]},
        ]
        error = qdrant_error(http.put(f"/collections/{name}/points", json={"points": points}))
        assert "points[1].vector is a zero vector" in error
        batch = {"batch": {"ids": [3], "vectors": [[0.0, -0.0, 0.0, 0.0]]}}
        assert "zero vector" in qdrant_error(http.put(f"/collections/{name}/points", json=batch))
        # nothing of the refused batch was written
        count = http.post(f"/collections/{name}/points/count", json={})
        assert count.json()["result"]["count"] == 0


@pytest.mark.parametrize("route", ["search", "query"])
def test_zero_query_vector_on_cosine_collection_is_refused(
    dataplane: DataPlane, route: str
) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http, distance="Cosine")
        point = {"id": 1, "vector": [1, 2, 3, 4]}
        assert http.put(f"/collections/{name}/points", json={"points": [point]}).status_code == 200
        body = {"vector": [0, 0, 0, 0]} if route == "search" else {"query": [0, 0, 0, 0]}
        error = qdrant_error(http.post(f"/collections/{name}/points/{route}", json=body))
        assert "zero vector" in error


def test_zero_vector_is_fine_for_dot_and_tiny_vectors_normalise(dataplane: DataPlane) -> None:
    with dataplane.client() as http:
        dot = dataplane.collection(http, distance="Dot")
        zero = {"points": [{"id": 1, "vector": [0, 0, 0, 0]}]}
        assert http.put(f"/collections/{dot}/points", json=zero).status_code == 200
        cosine = dataplane.collection(http, distance="Cosine")
        tiny = {"points": [{"id": 1, "vector": [1e-30, 0, 0, 0]}]}  # its square underflows
        assert http.put(f"/collections/{cosine}/points", json=tiny).status_code == 200
        found = http.post(
            f"/collections/{cosine}/points/query", json={"query": [1, 0, 0, 0], "with_vector": True}
        )
        assert found.status_code == 200, found.text
        (hit,) = found.json()["result"]["points"]
        assert hit["score"] == pytest.approx(1.0, abs=1e-5)
        assert hit["vector"] == pytest.approx([1.0, 0, 0, 0], abs=1e-6)
