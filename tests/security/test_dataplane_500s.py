"""Data-plane bodies that made the server answer 500 (issue 11, item 15, found by
fuzzing), against a real server on both engines. Each is now a 400 in Qdrant's envelope:

- a batch upsert whose ``ids`` is not a list (``len(5)`` raised);
- a payload nested 255 levels or more (encoding it to measure its size overflowed);
- a query vector in ~990 nested ``{"nearest": …}`` / ``{"vector": …}`` wrappers
  (``RecursionError`` in the vector parser).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.security.conftest import DataPlane, qdrant_error


def nested(levels: int, leaf: str, key: str = "a") -> str:
    """JSON text of ``levels`` objects ``{"key": …}`` around ``leaf`` (built as text: the
    encoders refuse to write what the attacker sends)."""
    return f'{{"{key}":' * levels + leaf + "}" * levels


def put(http: httpx.Client, path: str, text: str) -> httpx.Response:
    return http.put(path, content=text, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "batch",
    [
        {"ids": 5, "vectors": []},
        {"ids": "x", "vectors": [[1, 0, 0, 0]]},
        {"ids": None, "vectors": [[1, 0, 0, 0]], "payloads": [{}]},
        {"ids": [1], "vectors": 7},
        {"ids": [1], "vectors": [[1, 0, 0, 0]], "payloads": 3},
        {"ids": {"a": 1}, "vectors": [], "payloads": {}},
    ],
    ids=["ids_int", "ids_str", "ids_null", "vectors_int", "payloads_int", "ids_object"],
)
def test_batch_upsert_with_ids_not_a_list_is_a_400(dataplane: DataPlane, batch: Any) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http)
        qdrant_error(http.put(f"/collections/{name}/points", json={"batch": batch}))


@pytest.mark.parametrize("levels", [255, 300, 1000])
@pytest.mark.parametrize("shape", ["object", "array"])
def test_payload_nested_past_the_encoder_limit_is_a_400(
    dataplane: DataPlane, levels: int, shape: str
) -> None:
    if shape == "object":
        payload = nested(levels, "1")
    else:
        payload = '{"a":' + "[" * (levels - 1) + "1" + "]" * (levels - 1) + "}"
    with dataplane.client() as http:
        name = dataplane.collection(http)
        body = f'{{"points": [{{"id": 1, "vector": [1, 0, 0, 0], "payload": {payload}}}]}}'
        assert "nested more than" in qdrant_error(put(http, f"/collections/{name}/points", body))
        batch = f'{{"batch": {{"ids": [1], "vectors": [[1, 0, 0, 0]], "payloads": [{payload}]}}}}'
        assert "nested more than" in qdrant_error(put(http, f"/collections/{name}/points", batch))


@pytest.mark.parametrize("wrapper", ["nearest", "vector"])
@pytest.mark.parametrize("route", ["query", "search"])
def test_deeply_wrapped_query_vector_is_a_400(
    dataplane: DataPlane, wrapper: str, route: str
) -> None:
    vector = nested(990, "[1, 0, 0, 0]", key=wrapper)
    body = f'{{"query": {vector}}}' if route == "query" else f'{{"vector": {vector}}}'
    with dataplane.client() as http:
        name = dataplane.collection(http)
        sent = http.post(
            f"/collections/{name}/points/{route}",
            content=body,
            headers={"content-type": "application/json"},
        )
        qdrant_error(sent)
        points = f'{{"points": [{{"id": 1, "vector": {vector}}}]}}'
        qdrant_error(put(http, f"/collections/{name}/points", points))


def test_qdrant_wrapped_vectors_still_work(dataplane: DataPlane) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http)
        points = {"points": [{"id": 1, "vector": {"": [1, 0, 0, 0]}}]}
        assert http.put(f"/collections/{name}/points", json=points).status_code == 200
        for query in (
            [1, 0, 0, 0],
            {"nearest": [1, 0, 0, 0]},
            {"nearest": {"vector": [1, 0, 0, 0], "name": ""}},
            {"nearest": {"": [1, 0, 0, 0]}},
        ):
            found = http.post(f"/collections/{name}/points/query", json={"query": query})
            assert found.status_code == 200, (query, found.text)
            assert [p["id"] for p in found.json()["result"]["points"]] == [1]


@pytest.mark.parametrize("route", ["count", "scroll", "search", "delete"])
def test_filter_nested_past_the_encoder_limit_is_a_400(dataplane: DataPlane, route: str) -> None:
    deep = '{"must":[' * 300 + "{}" + "]}" * 300
    vector = ', "vector": [1, 0, 0, 0]' if route == "search" else ""
    with dataplane.client() as http:
        name = dataplane.collection(http)
        sent = http.post(
            f"/collections/{name}/points/{route}",
            content=f'{{"filter": {deep}{vector}}}',
            headers={"content-type": "application/json"},
        )
        assert "nested too deeply" in qdrant_error(sent)


@pytest.mark.parametrize(
    ("method", "collection", "route"),
    [
        ("GET", "nul%00", ""),
        ("DELETE", "nul%00", ""),
        ("POST", "nul%00", "/points/scroll"),
        ("POST", "nul%00", "/points/count"),
        ("DELETE", "nul%00", "/index/n"),
        ("DELETE", None, "/index/nul%00"),
    ],
)
def test_nul_in_a_collection_or_index_name_is_not_a_500(
    dataplane: DataPlane, method: str, collection: str | None, route: str
) -> None:
    """Found by the property test: PostgreSQL refuses U+0000 in a text parameter, so a
    name holding one used to be a 500 on the pgvector engine. No collection or index
    can have such a name: the answer is that it does not exist."""
    with dataplane.client() as http:
        name = collection or dataplane.collection(http)
        answer = http.request(method, f"/collections/{name}{route}", json={})
        assert answer.status_code in (200, 404), answer.text
        if answer.status_code == 404:
            qdrant_error(answer, 404)
