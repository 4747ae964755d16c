"""A writer breaking every reader with a deep payload (issue 11, item 16), against a real
server on both engines.

A payload nested 252 to 254 levels used to be accepted; afterwards every scroll,
retrieve or query that returned it answered 500, for every caller, until the point was
deleted: the response envelope crossed the JSON encoder's depth limit. Payloads are now
limited at write time (depth and size) to what every read path can return, and the
deepest and the largest accepted payloads are read back through every route.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from tests.security.conftest import DataPlane, qdrant_error

MAX_PAYLOAD_BYTES = 64 * 1024  # the default ``max_payload_bytes``
MAX_PAYLOAD_DEPTH = 64  # ``bastion.vectors.payloads.MAX_PAYLOAD_DEPTH`` (docs/vectors.md)


def deep(levels: int) -> dict[str, Any]:
    """A payload of ``levels`` levels: objects, with an array at the bottom."""
    value: Any = ["leaf", 1, True, None]  # the deepest level: an array
    for level in range(levels - 1):
        value = {f"k{level}": value, "n": level}
    assert isinstance(value, dict)
    return value


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def largest() -> dict[str, Any]:
    """A payload of exactly ``MAX_PAYLOAD_BYTES`` bytes of compact JSON."""
    payload = {"text": ""}
    payload["text"] = "x" * (MAX_PAYLOAD_BYTES - len(orjson.dumps(payload)))
    assert len(orjson.dumps(payload)) == MAX_PAYLOAD_BYTES
    return payload


def put_raw(http: httpx.Client, name: str, payload_json: str) -> httpx.Response:
    body = f'{{"points": [{{"id": 9, "vector": [1, 0, 0, 0], "payload": {payload_json}}}]}}'
    return http.put(
        f"/collections/{name}/points",
        content=body,
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize("levels", [MAX_PAYLOAD_DEPTH + 1, 200, 252, 253, 254])
def test_payload_deeper_than_readers_can_return_is_refused(
    dataplane: DataPlane, levels: int
) -> None:
    payload = '{"a":' * (levels - 1) + "[1]" + "}" * (levels - 1)
    with dataplane.client() as http:
        name = dataplane.collection(http)
        error = qdrant_error(put_raw(http, name, payload))
        assert f"nested more than {MAX_PAYLOAD_DEPTH} levels" in error
        count = http.post(f"/collections/{name}/points/count", json={})
        assert count.json()["result"]["count"] == 0


def test_set_payload_under_a_deep_key_cannot_sink_past_the_limit(dataplane: DataPlane) -> None:
    """``set_payload`` with a nested ``key`` puts the payload that many levels lower: a
    60-level key and an accepted 10-level payload would make 70 (and a 250-level key 254)."""
    key = ".".join(f"k{i}" for i in range(60))
    with dataplane.client() as http:
        name = dataplane.collection(http)
        assert put_raw(http, name, '{"n": 1}').status_code == 200
        refused = http.post(
            f"/collections/{name}/points/payload",
            json={"payload": deep(10), "points": [9], "key": key},
        )
        error = qdrant_error(refused)
        assert f"nested more than {MAX_PAYLOAD_DEPTH} levels" in error
        read = http.post(f"/collections/{name}/points", json={"ids": [9], "with_payload": True})
        assert read.status_code == 200, read.text
        assert read.json()["result"][0]["payload"] == {"n": 1}  # nothing written


def test_payload_one_byte_too_large_is_refused(dataplane: DataPlane) -> None:
    payload = largest()
    payload["text"] += "x"
    with dataplane.client() as http:
        name = dataplane.collection(http)
        qdrant_error(put_raw(http, name, orjson.dumps(payload).decode()), status=413)


def test_deepest_and_largest_payloads_read_back_through_every_route(
    dataplane: DataPlane,
) -> None:
    deepest, biggest = deep(MAX_PAYLOAD_DEPTH), largest()
    assert depth(deepest) == MAX_PAYLOAD_DEPTH
    written = {1: deepest, 2: biggest}
    points = [
        {"id": 1, "vector": [1, 0, 0, 0], "payload": deepest},
        {"id": 2, "vector": [0, 1, 0, 0], "payload": biggest},
    ]
    with dataplane.client() as http:
        name = dataplane.collection(http)
        stored = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
        assert stored.status_code == 200, stored.text

        def read(path: str, body: dict[str, Any]) -> Any:
            answer = http.post(f"/collections/{name}/{path}", json=body)
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
            return answer.json()["result"]

        seen: dict[str, list[dict[str, Any]]] = {
            "scroll": read("points/scroll", {"with_payload": True})["points"],
            "retrieve": read("points", {"ids": [1, 2], "with_payload": True}),
            "search": read("points/search", {"vector": [1, 1, 0, 0], "with_payload": True}),
            "query": read("points/query", {"query": [1, 1, 0, 0], "with_payload": True})["points"],
            "query_by_order": read("points/query", {"with_payload": True})["points"],
        }
        exported = http.post(f"/collections/{name}/export")
        assert exported.status_code == 200, exported.text[:300]
        seen["export"] = [orjson.loads(line) for line in exported.content.splitlines()]
        for route, found in seen.items():
            assert {point["id"]: point["payload"] for point in found} == written, route
