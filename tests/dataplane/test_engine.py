"""The embedded engine without HTTP: durability, search correctness, filters, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.vectors import (
    BadRequest,
    CollectionExists,
    CollectionNotFound,
    CollectionSpec,
    EmbeddedEngine,
    HnswParams,
    PayloadSelector,
    PointWrite,
    SearchQuery,
    key_to_id,
    parse_filter,
    parse_point_id,
)
from tests.dataplane.conftest import ACTOR, open_engine, run

DIM = 16
A, B = "ten_a", "ten_b"


def spec(name: str = "docs", *, distance: Any = "Cosine", exact_below_kib: int = 10_000) -> Any:
    return CollectionSpec(
        name=name,
        dim=DIM,
        distance=distance,
        hnsw=HnswParams(full_scan_threshold=exact_below_kib),
    )


def writes(ids: range | list[Any], payload: Any = None) -> list[PointWrite]:
    return [
        PointWrite(parse_point_id(i), payload(i) if callable(payload) else payload) for i in ids
    ]


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def ingest(engine: EmbeddedEngine, n: int, *, name: str = "docs", **kwargs: Any) -> np.ndarray:
    run(engine.create_collection(A, spec(name, **kwargs), actor=ACTOR))
    data = vectors(n)
    for start in range(0, n, 1000):
        end = min(start + 1000, n)
        run(
            engine.upsert(
                A,
                name,
                writes(range(start, end), lambda i: {"n": i, "even": i % 2 == 0}),
                data[start:end],
                actor=ACTOR,
            )
        )
    return data


def search(engine: EmbeddedEngine, vector: np.ndarray, **kwargs: Any) -> list[Any]:
    return run(engine.search(A, kwargs.pop("name", "docs"), SearchQuery(vector=vector, **kwargs)))


def ids_of(results: list[Any]) -> list[Any]:
    return [key_to_id(r.key) for r in results]


def test_collections_are_per_tenant(engine: EmbeddedEngine) -> None:
    run(engine.create_collection(A, spec(), actor=ACTOR))
    run(engine.create_collection(B, spec(), actor=ACTOR))  # same name, other tenant: allowed
    with pytest.raises(CollectionExists):
        run(engine.create_collection(A, spec(), actor=ACTOR))
    run(engine.upsert(A, "docs", writes([1]), vectors(1), actor=ACTOR))
    assert run(engine.count(A, "docs", filter=None)) == 1
    assert run(engine.count(B, "docs", filter=None)) == 0
    assert run(engine.list_collections(A)) == ["docs"]
    assert run(engine.delete_collection(B, "docs", actor=ACTOR)) is True
    assert run(engine.collection_exists(B, "docs")) is False
    assert run(engine.collection_exists(A, "docs")) is True
    with pytest.raises(CollectionNotFound):
        run(engine.get_collection(B, "docs"))


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid"])
def test_scores_follow_qdrant_conventions(engine: EmbeddedEngine, distance: str) -> None:
    data = ingest(engine, 200, distance=distance)
    query = vectors(1, seed=9)[0]
    if distance == "Cosine":
        normed = data / np.linalg.norm(data, axis=1, keepdims=True)
        expected = normed @ (query / np.linalg.norm(query))
        order = np.argsort(-expected)
    elif distance == "Dot":
        expected = data @ query
        order = np.argsort(-expected)
    else:
        expected = np.linalg.norm(data - query, axis=1)
        order = np.argsort(expected)  # Euclid: distance, ascending
    results = search(engine, query, limit=5)
    assert ids_of(results) == order[:5].tolist()
    assert [r.score for r in results] == pytest.approx(expected[order[:5]].tolist(), rel=1e-4)


def test_ann_recall_and_filtered_search_returns_limit(engine: EmbeddedEngine) -> None:
    data = ingest(engine, 5000, exact_below_kib=1)  # force the ANN path
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    queries = vectors(50, seed=3)
    hits = 0
    for query in queries:
        truth = set(np.argsort(-(normed @ query))[:10].tolist())
        hits += len(truth & set(ids_of(search(engine, query, limit=10))))
    assert hits / 500 >= 0.95
    # a very selective filter (6 matches) and a broad one (half): still `limit` results
    rare = parse_filter({"must": [{"key": "n", "range": {"gte": 100, "lt": 106}}]})
    assert sorted(ids_of(search(engine, queries[0], limit=10, filter=rare))) == list(
        range(100, 106)
    )
    broad = parse_filter({"must": [{"key": "even", "match": {"value": True}}]})
    results = search(engine, queries[0], limit=25, filter=broad)
    assert len(results) == 25
    assert all(i % 2 == 0 for i in ids_of(results))
    mid = parse_filter({"must": [{"key": "n", "range": {"lt": 400}}]})
    assert len(search(engine, queries[1], limit=50, filter=mid)) == 50


def test_updates_and_deletes_visible_immediately(engine: EmbeddedEngine) -> None:
    ingest(engine, 3000, exact_below_kib=1)
    target = vectors(1, seed=42)[0]
    run(engine.upsert(A, "docs", writes([7], {"moved": True}), target[None, :], actor=ACTOR))
    top = search(engine, target, limit=1, with_payload=PayloadSelector())
    assert ids_of(top) == [7]
    assert top[0].payload == {"moved": True}
    assert top[0].score == pytest.approx(1.0, abs=1e-5)
    assert run(engine.delete_points(A, "docs", keys=[parse_point_id(7)], actor=ACTOR)) == 1
    assert 7 not in ids_of(search(engine, target, limit=10))
    assert run(engine.count(A, "docs", filter=None)) == 2999
    # the freed slot is reused by a new point, which is found
    run(engine.upsert(A, "docs", writes([90_000]), target[None, :], actor=ACTOR))
    assert ids_of(search(engine, target, limit=1)) == [90_000]


@pytest.mark.parametrize(
    ("ids", "data", "message"),
    [
        ([1, 2], vectors(2)[:, :-1], "dimension"),
        ([1, 2], np.array([[np.nan] * DIM, [0.0] * DIM], np.float32), "NaN"),
        ([1, 2], np.array([[np.inf] * DIM, [0.0] * DIM], np.float32), "NaN"),
        ([1, 1], vectors(2), "duplicate"),
    ],
)
def test_bad_batch_is_refused_whole(
    engine: EmbeddedEngine, ids: list[int], data: np.ndarray, message: str
) -> None:
    run(engine.create_collection(A, spec(), actor=ACTOR))
    with pytest.raises(BadRequest, match=message):
        run(engine.upsert(A, "docs", writes(ids), data, actor=ACTOR))
    assert run(engine.count(A, "docs", filter=None)) == 0


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, True, "not-a-uuid", None, [1]])
def test_wrong_id_types_are_refused(bad: Any) -> None:
    with pytest.raises(BadRequest):
        parse_point_id(bad)


def test_ids_round_trip_and_sort_like_qdrant() -> None:
    uuid = "5C56C793-69F3-4FBF-87E6-C4BF54C28C26"
    assert key_to_id(parse_point_id(uuid)) == uuid.lower()
    assert key_to_id(parse_point_id(2**64 - 1)) == 2**64 - 1
    keys = sorted(parse_point_id(i) for i in [uuid, 10, 9, 2**63])
    assert [key_to_id(k) for k in keys] == [9, 10, 2**63, uuid.lower()]


def test_unknown_collection(engine: EmbeddedEngine) -> None:
    with pytest.raises(CollectionNotFound):
        run(engine.upsert(A, "nope", writes([1]), vectors(1), actor=ACTOR))
    with pytest.raises(CollectionNotFound):
        search(engine, vectors(1)[0], name="nope")


def test_scroll_pages_through_everything_in_id_order(engine: EmbeddedEngine) -> None:
    run(engine.create_collection(A, spec(), actor=ACTOR))
    uuids = ["00000000-0000-0000-0000-000000000001", "ffffffff-0000-0000-0000-000000000000"]
    ids: list[Any] = [*uuids, *range(250, 0, -1)]
    run(engine.upsert(A, "docs", writes(ids, {"k": "v"}), vectors(len(ids)), actor=ACTOR))
    seen: list[Any] = []
    offset = None
    while True:
        page = run(
            engine.scroll(
                A,
                "docs",
                filter=None,
                offset_key=offset,
                limit=64,
                with_payload=PayloadSelector(),
                with_vector=False,
            )
        )
        seen += ids_of(page.points)
        if page.next_key is None:
            break
        offset = page.next_key
    assert seen == [*range(1, 251), *uuids]
    only = parse_filter({"must": [{"has_id": [5, 6, uuids[1]]}]})
    page = run(
        engine.scroll(
            A,
            "docs",
            filter=only,
            offset_key=None,
            limit=10,
            with_payload=PayloadSelector(enabled=False),
            with_vector=True,
        )
    )
    assert ids_of(page.points) == [5, 6, uuids[1]]
    assert page.next_key is None
    assert page.points[0].payload is None
    assert len(page.points[0].vector or []) == DIM


def test_delete_and_count_by_filter(engine: EmbeddedEngine) -> None:
    ingest(engine, 100)
    even = parse_filter({"must": [{"key": "even", "match": {"value": True}}]})
    assert run(engine.count(A, "docs", filter=even)) == 50
    assert run(engine.delete_points(A, "docs", filter=even, actor=ACTOR)) == 50
    assert run(engine.count(A, "docs", filter=None)) == 50
    assert run(engine.count(A, "docs", filter=even)) == 0


def test_payload_index_gives_the_same_answers(engine: EmbeddedEngine) -> None:
    ingest(engine, 500)
    flt = parse_filter({"must": [{"key": "n", "match": {"any": [3, 4, 400]}}]})
    before = run(engine.count(A, "docs", filter=flt))
    run(engine.create_payload_index(A, "docs", "n", "integer", actor=ACTOR))
    assert run(engine.count(A, "docs", filter=flt)) == before == 3
    run(engine.upsert(A, "docs", writes([3], {"n": 999}), vectors(1), actor=ACTOR))
    assert run(engine.count(A, "docs", filter=flt)) == 2
    info = run(engine.get_collection(A, "docs"))
    assert info.payload_schema == {"n": ("integer", 500)}


def _snapshot(engine: EmbeddedEngine, query: np.ndarray) -> tuple[int, list[Any]]:
    return run(engine.count(A, "docs", filter=None)), ids_of(search(engine, query, limit=10))


def test_restart_after_clean_shutdown_loads_the_saved_index(data_dir: Path) -> None:
    engine = open_engine(data_dir)
    ingest(engine, 3000, exact_below_kib=1)
    query = vectors(1, seed=5)[0]
    before = _snapshot(engine, query)
    engine.close()
    assert list((data_dir / "vectors").glob("*.hnsw"))
    again = open_engine(data_dir)
    assert _snapshot(again, query) == before


def test_restart_without_shutdown_catches_up_from_rows(data_dir: Path) -> None:
    engine = open_engine(data_dir)
    ingest(engine, 3000, exact_below_kib=1)
    engine.close()  # saved index at this version
    target = vectors(1, seed=77)[0]
    run(engine.upsert(A, "docs", writes([5000], {"late": 1}), target[None, :], actor=ACTOR))
    run(engine.delete_points(A, "docs", keys=[parse_point_id(0), parse_point_id(1)], actor=ACTOR))
    # no close(): as if killed. The saved index is stale and must be caught up.
    again = open_engine(data_dir)
    assert run(again.count(A, "docs", filter=None)) == 2999
    top = search(again, target, limit=3, with_payload=PayloadSelector())
    assert ids_of(top)[0] == 5000
    assert top[0].payload == {"late": 1}
    query = vectors(1, seed=0)[0]  # == point 0's vector
    assert 0 not in ids_of(search(again, query, limit=10))


def _caught_up(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = [r.getMessage() for r in caplog.records if "caught up" in r.getMessage()]
    caplog.clear()
    return found


def test_the_index_is_saved_after_a_catch_up_so_restarts_do_not_replay(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16: "2 caught up" on every start. The index is saved once caught up (and a
    label already marked deleted is not stale again), so the next start, even after
    another crash, has nothing to replay."""
    caplog.set_level("INFO", logger="bastion.vectors")
    engine = open_engine(data_dir)
    ingest(engine, 1000, exact_below_kib=1)
    run(engine.delete_points(A, "docs", keys=[parse_point_id(7)], actor=ACTOR))
    engine.close()  # saved, with point 7 marked deleted
    run(engine.upsert(A, "docs", writes([5000], {"late": 1}), vectors(1, seed=3), actor=ACTOR))
    run(engine.delete_points(A, "docs", keys=[parse_point_id(0)], actor=ACTOR))
    caplog.clear()
    # killed: no close(). The first start catches up the two writes ...
    again = open_engine(data_dir)
    assert _caught_up(caplog) == [
        "collection docs: loaded its saved index (999 points, 2 caught up)"
    ]
    # ... and, killed again, the second start has nothing left to replay
    third = open_engine(data_dir)
    assert _caught_up(caplog) == [
        "collection docs: loaded its saved index (999 points, 0 caught up)"
    ]
    third.close()
    assert _caught_up(caplog) == []
    fourth = open_engine(data_dir)
    assert _caught_up(caplog) == [
        "collection docs: loaded its saved index (999 points, 0 caught up)"
    ]
    assert run(fourth.count(A, "docs", filter=None)) == 999
    top = search(fourth, vectors(1, seed=3)[0], limit=1)
    assert ids_of(top) == [5000]
    for opened in (again, third, fourth):
        opened.db.dispose()


def test_restart_with_no_index_file_rebuilds(data_dir: Path) -> None:
    engine = open_engine(data_dir)
    ingest(engine, 2000, exact_below_kib=1)
    query = vectors(1, seed=8)[0]
    before = _snapshot(engine, query)
    again = open_engine(data_dir)  # never closed: nothing saved, rebuild from rows
    assert _snapshot(again, query)[0] == before[0]
    assert len(set(_snapshot(again, query)[1]) & set(before[1])) >= 9


def test_export_yields_every_point(engine: EmbeddedEngine) -> None:
    ingest(engine, 2500)

    async def collect() -> list[Any]:
        return [record async for record in engine.export(A, "docs")]

    records = run(collect())
    assert len(records) == 2500
    assert records[0].vector is not None
    assert records[0].payload == {"n": 0, "even": True}


def test_only_searches_bounded_to_about_a_millisecond_run_on_the_event_loop(
    data_dir: Path,
) -> None:
    """Issue 11.5: the cost of a plan, not the size of the collection, decides whether it
    may run on the event loop (``LiveCollection.is_cheap``)."""
    engine = open_engine(data_dir)
    ingest(engine, 5000)
    run(engine.create_payload_index(A, "docs", "even", "bool", actor=ACTOR))
    run(engine.create_payload_index(A, "docs", "n", "integer", actor=ACTOR))
    live = engine._get(A, "docs")
    query = vectors(1)[0]

    def cheap(raw: dict[str, Any] | None = None, **kwargs: Any) -> bool:
        flt = None if raw is None else parse_filter(raw)
        return live.is_cheap(SearchQuery(vector=query, filter=flt, **kwargs))

    assert cheap()  # an exact scan of 5,000 x 8
    assert not cheap(limit=1000, offset=1)  # a long result page
    assert cheap({"must": [{"key": "n", "match": {"any": [1, 2, 3]}}]})  # 3 points by index
    assert cheap({"must": [{"has_id": [1, 2, 3]}]})
    # half the collection by index, or every point: thousands of predicate evaluations
    assert not cheap({"must": [{"key": "even", "match": {"value": True}}]})
    assert not cheap({"must": [{"key": "x", "match": {"value": 1}}]})
    engine.db.dispose()
