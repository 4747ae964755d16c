"""Filter cost exhaustion (issue 11, item 5), against a real server on both engines.

There was a depth limit and a cap per list but no overall budget: a 14.5 MB filter
(1,024 x 64 x 49 conditions) took 3.5 s, and because small collections were searched on
the event loop, unrelated requests (``/.well-known/jwks.json``) waited as long. Now a
filter has a total budget (conditions, and values in its lists) answered with a clear
400 on every route that takes one, and a search whose filter costs more than about a
millisecond runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import orjson
import pytest
from tests.security.conftest import DataPlane, qdrant_error

MAX_FILTER_CONDITIONS = 4096  # bastion.vectors.filters.MAX_FILTER_CONDITIONS
MAX_FILTER_VALUES = 10_000  # bastion.vectors.filters.MAX_FILTER_VALUES


def always_true(conditions: int, start: int = 0) -> dict[str, Any]:
    """A filter of ``conditions`` range conditions, in nested lists of at most 1,000,
    that every point with ``n`` ≥ 0 passes (so each one is evaluated for every point)."""
    groups = []
    for first in range(start, start + conditions, 1000):
        size = min(1000, start + conditions - first)
        groups.append({"must": [{"key": "n", "range": {"gte": -first - i}} for i in range(size)]})
    return {"must": groups}


def routes(name: str, flt: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/collections/{name}/points/search", {"vector": [1, 0, 0, 0], "filter": flt}),
        (f"/collections/{name}/points/query", {"query": [1, 0, 0, 0], "filter": flt}),
        (f"/collections/{name}/points/query", {"filter": flt}),
        (f"/collections/{name}/points/scroll", {"filter": flt}),
        (f"/collections/{name}/points/count", {"filter": flt}),
        (f"/collections/{name}/points/delete", {"filter": flt}),
    ]


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(path, content=orjson.dumps(body), headers={"content-type": "application/json"})


def test_filter_over_the_condition_budget_is_a_400_on_every_route(dataplane: DataPlane) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http)
        points = {"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": {"n": 1}}]}
        assert http.put(f"/collections/{name}/points", json=points).status_code == 200
        too_many = always_true(MAX_FILTER_CONDITIONS)  # + the groups: over the budget
        for path, body in routes(name, too_many):
            error = qdrant_error(post(http, path, body))
            assert "filter is too complex" in error, (path, error)
        count = http.post(f"/collections/{name}/points/count", json={})
        assert count.json()["result"]["count"] == 1  # the refused delete deleted nothing
        # just inside the budget: answered
        inside = always_true(MAX_FILTER_CONDITIONS - 10)
        answered = post(http, f"/collections/{name}/points/count", {"filter": inside})
        assert answered.status_code == 200, answered.text
        assert answered.json()["result"]["count"] == 1


def test_the_reported_14mb_filter_is_refused_quickly(dataplane: DataPlane) -> None:
    leaf: list[dict[str, Any]] = [{}] * 49  # an empty condition is an empty filter
    middle = [{"must": leaf} for _ in range(64)]
    attack = {"must": [{"must": middle} for _ in range(1024)]}
    body = orjson.dumps({"vector": [1, 0, 0, 0], "filter": attack})
    assert len(body) > 10_000_000  # 14.5 MB as the report sent it, with spaces
    with dataplane.client() as http:
        name = dataplane.collection(http)
        started = time.monotonic()
        answer = http.post(
            f"/collections/{name}/points/search",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert "filter is too complex" in qdrant_error(answer)
        assert time.monotonic() - started < 15  # parsing stops early: never evaluated


def test_filter_over_the_value_budget_is_a_400(dataplane: DataPlane) -> None:
    half = MAX_FILTER_VALUES // 2 + 1
    flt = {
        "must": [
            {"key": "n", "match": {"any": list(range(half))}},
            {"has_id": list(range(half))},
        ]
    }
    with dataplane.client() as http:
        name = dataplane.collection(http)
        for path, body in routes(name, flt):
            assert "filter is too complex" in qdrant_error(post(http, path, body)), path


def test_an_expensive_filtered_search_does_not_stall_other_requests(
    dataplane: DataPlane,
) -> None:
    """800 points x ~4,000 conditions: seconds of predicate work, done in a worker
    thread; the event loop keeps answering meanwhile."""
    with dataplane.client() as http:
        name = dataplane.collection(http)
        points = [{"id": i, "vector": [1, 0, 0, i], "payload": {"n": i}} for i in range(800)]
        assert http.put(f"/collections/{name}/points", json={"points": points}).status_code == 200
    heavy = {"vector": [1, 0, 0, 0], "filter": always_true(4000), "limit": 3}
    done: dict[str, Any] = {}

    def search() -> None:
        with dataplane.client() as http:
            started = time.monotonic()
            done["answer"] = post(http, f"/collections/{name}/points/search", heavy)
            done["seconds"] = time.monotonic() - started
            done["at"] = time.monotonic()

    worker = threading.Thread(target=search)
    worker.start()
    time.sleep(0.4)  # the search is under way
    answered = []
    for _ in range(3):
        jwks = httpx.get(f"{dataplane.url}/.well-known/jwks.json", timeout=30)
        answered.append(time.monotonic())
        assert jwks.status_code == 200
    worker.join(60)
    assert done["answer"].status_code == 200, done["answer"].text
    assert len(done["answer"].json()["result"]) == 3
    if dataplane.engine == "embedded":  # evaluated in Python: the search is slow ...
        assert done["seconds"] > 1.0, "the search must be slow for this test to mean anything"
        # ... and the loop answered meanwhile: on the loop, jwks waited for it to end
        assert max(answered) < done["at"] - 0.2, (answered, done)


@pytest.mark.parametrize("limit", [5_000])
def test_a_large_result_page_is_built_off_the_event_loop(dataplane: DataPlane, limit: int) -> None:
    """A page past ``ON_LOOP_RESULTS`` is searched, and a heavy answer encoded, in a worker
    thread: answered in full all the same."""
    with dataplane.client() as http:
        name = dataplane.collection(http)
        points = [{"id": i, "vector": [1, 0, 0, i % 7]} for i in range(1500)]
        assert http.put(f"/collections/{name}/points", json={"points": points}).status_code == 200
        found = http.post(
            f"/collections/{name}/points/search", json={"vector": [1, 0, 0, 0], "limit": limit}
        )
        assert found.status_code == 200, found.text
        assert len(found.json()["result"]) == 1500
        page = http.post(
            f"/collections/{name}/points/scroll", json={"limit": limit, "with_vector": True}
        )
        assert page.status_code == 200, page.text
        assert int(page.headers["content-length"]) == len(page.content)
        assert [p["vector"][3] for p in page.json()["result"]["points"][:8]] == [
            0,
            1,
            2,
            3,
            4,
            5,
            6,
            0,
        ]
