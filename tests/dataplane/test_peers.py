"""Several worker processes on one data folder: every engine sees every other's writes.

Each ``EmbeddedEngine`` here has its own ``Database`` (its own SQLite connections), as a
worker process of ``bastion serve --workers N`` has; they share only the data folder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from bastion.storage import Database
from bastion.vectors import (
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
    peers,
)
from bastion.vectors.schema import collections, point_tombstones
from tests.dataplane.conftest import ACTOR, run

DIM = 8
A = "ten_a"
EVERYTHING = PayloadSelector()
ENGINE_KINDS = ("embedded",)  # worker processes keeping in step: the embedded engine's


def worker(data_dir: Path) -> EmbeddedEngine:
    engine = EmbeddedEngine(Database(f"sqlite:///{data_dir / 'bastion.db'}"), data_dir, shared=True)
    engine.open()
    return engine


@pytest.fixture
def pair(data_dir: Path) -> Any:
    engines = [worker(data_dir), worker(data_dir)]
    yield engines
    for engine in engines:
        engine.close()
        engine.db.dispose()


def spec(name: str = "docs", dim: int = DIM) -> CollectionSpec:
    # A graph from the first point on: the ANN index is what must stay in step.
    return CollectionSpec(
        name=name, dim=dim, distance="Cosine", hnsw=HnswParams(full_scan_threshold=0)
    )


def upsert(
    engine: EmbeddedEngine, ids: range | list[int], seed: int, name: str = "docs"
) -> np.ndarray:
    data = np.random.default_rng(seed).normal(size=(len(ids), DIM)).astype(np.float32)
    points = [PointWrite(parse_point_id(i), {"n": i, "seed": seed}) for i in ids]
    run(engine.upsert(A, name, points, data, actor=ACTOR))
    return data


def nearest(engine: EmbeddedEngine, vector: np.ndarray, limit: int = 1) -> list[Any]:
    query = SearchQuery(vector=vector, limit=limit, with_payload=EVERYTHING)
    return [key_to_id(hit.key) for hit in run(engine.search(A, "docs", query))]


def state(engine: EmbeddedEngine) -> dict[Any, tuple[Any, list[float]]]:
    """Every point as this engine serves it: id -> (payload, vector)."""
    records = run(
        engine.retrieve(
            A,
            "docs",
            [parse_point_id(i) for i in range(0, 3000)],
            with_payload=EVERYTHING,
            with_vector=True,
        )
    )
    return {key_to_id(r.key): (r.payload, np.round(r.vector, 5).tolist()) for r in records}


def test_a_collection_created_by_one_worker_is_served_by_the_other(pair: Any) -> None:
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    assert run(two.collection_exists(A, "docs"))
    assert run(two.list_collections(A)) == ["docs"]
    data = upsert(one, range(200), seed=1)
    assert run(two.count(A, "docs", filter=None)) == 200
    assert nearest(two, data[17]) == [17]


def test_writes_from_both_workers_interleave_and_both_agree(pair: Any) -> None:
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    upsert(one, range(0, 300), seed=1)
    upsert(two, range(300, 600), seed=2)  # new slots picked after catching up
    run(
        one.delete_points(A, "docs", keys=[parse_point_id(i) for i in range(250, 350)], actor=ACTOR)
    )
    moved = upsert(two, range(280, 320), seed=3)  # deleted ones written again: new slots
    run(
        two.delete_points(
            A,
            "docs",
            filter=parse_filter(
                {
                    "must": [{"key": "seed", "match": {"value": 2}}],
                    "must_not": [{"key": "n", "range": {"lt": 500}}],
                }
            ),
            actor=ACTOR,
        )
    )
    again = upsert(one, range(590, 610), seed=4)  # some deleted by the filter, some new

    assert state(one) == state(two)
    survivors = sorted(state(one))
    expected = [*range(0, 250), *range(280, 320), *range(350, 500), *range(590, 610)]
    assert survivors == expected
    for engine in (one, two):
        assert run(engine.count(A, "docs", filter=None)) == len(expected)
        assert nearest(engine, moved[5]) == [285]
        assert nearest(engine, again[3]) == [593]
    live_one = one._get(A, "docs")
    live_two = two._get(A, "docs")
    assert live_one.slot_of == live_two.slot_of  # the same slots: labels agree everywhere
    assert live_one.ann.live_count == live_two.ann.live_count == len(expected)


def test_keep_up_brings_an_idle_worker_in_step_before_any_call(pair: Any) -> None:
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    run(two.keep_up())
    upsert(one, range(500), seed=11)
    idle = two._get(A, "docs")
    assert idle.count == 0  # nothing asked it anything since
    run(two.keep_up())
    assert idle.count == 500
    assert idle.version == one._get(A, "docs").version


def test_a_deleted_point_is_not_found_by_the_other_worker(pair: Any) -> None:
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    data = upsert(one, range(100), seed=5)
    assert nearest(two, data[42]) == [42]
    run(one.delete_points(A, "docs", keys=[parse_point_id(42)], actor=ACTOR))
    assert 42 not in nearest(two, data[42], limit=10)
    assert run(two.count(A, "docs", filter=None)) == 99


def test_old_tombstones_are_dropped_and_a_copy_left_far_behind_still_agrees(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peers, "KEEP_TOMBSTONE_VERSIONS", 3)
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    data = upsert(one, range(100), seed=8)
    assert run(two.count(A, "docs", filter=None)) == 100  # two is in step here ...
    for start in range(0, 40, 5):  # ... and then serves nothing for 16 writes
        run(
            one.delete_points(
                A, "docs", keys=[parse_point_id(i) for i in range(start, start + 5)], actor=ACTOR
            )
        )
        upsert(one, [start + 1], seed=9)  # deleted and written again: a new row
    with one.db.read() as conn:
        kept = conn.execute(select(point_tombstones.c.version).distinct()).scalars().all()
        horizon = conn.execute(select(collections.c.tombstones_dropped_through)).scalar_one()
    assert len(kept) <= 3  # only the tombstones of the last few versions are left
    assert horizon > 0
    assert two._get(A, "docs").version < horizon  # two needs tombstones that are gone

    expected = sorted([*range(40, 100), *range(1, 40, 5)])
    assert sorted(state(two)) == sorted(state(one)) == expected
    assert state(two) == state(one)
    assert 12 not in nearest(two, data[12], limit=10)
    assert nearest(two, data[60]) == [60]


def test_collection_deleted_and_created_again_elsewhere(pair: Any) -> None:
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    upsert(one, range(50), seed=6)
    assert run(two.count(A, "docs", filter=None)) == 50
    assert run(one.delete_collection(A, "docs", actor=ACTOR))
    with pytest.raises(CollectionNotFound):
        run(two.search(A, "docs", SearchQuery(vector=np.ones(DIM, np.float32), limit=3)))
    run(one.create_collection(A, spec(dim=4), actor=ACTOR))
    assert run(two.get_collection(A, "docs")).spec.dim == 4
    assert run(two.count(A, "docs", filter=None)) == 0


def test_a_payload_index_made_by_one_worker_shows_on_the_other(pair: Any) -> None:
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    upsert(one, range(30), seed=7)
    run(one.create_payload_index(A, "docs", "n", "integer", actor=ACTOR))
    info = run(two.get_collection(A, "docs"))
    assert info.payload_schema["n"] == ("integer", 30)
    assert run(one.delete_payload_index(A, "docs", "n", actor=ACTOR))
    assert run(two.get_collection(A, "docs")).payload_schema == {}
    assert two._get(A, "docs").inverted == {}


def test_concurrent_writers_lose_nothing(pair: Any, data_dir: Path) -> None:
    one, two = pair
    run(one.create_collection(A, spec(), actor=ACTOR))
    vectors: dict[int, np.ndarray] = {}
    failures: list[BaseException] = []

    def write(engine: EmbeddedEngine, first: int, seed: int) -> None:
        try:
            for start in range(first, first + 600, 50):
                data = upsert(engine, range(start, start + 50), seed=seed + start)
                vectors.update(zip(range(start, start + 50), data, strict=True))
                run(engine.delete_points(A, "docs", keys=[parse_point_id(start)], actor=ACTOR))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [
        threading.Thread(target=write, args=(one, 0, 10)),
        threading.Thread(target=write, args=(two, 1000, 20)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    expected = sorted(i for i in vectors if i % 50 != 0)
    assert sorted(state(one)) == sorted(state(two)) == expected
    assert state(one) == state(two)
    late = worker(data_dir)  # a worker that starts later loads the same
    try:
        assert state(late) == state(one)
        for i in (1, 49, 1001, 1599):
            assert nearest(late, vectors[i]) == nearest(one, vectors[i]) == [i]
    finally:
        late.close()
        late.db.dispose()


def test_tombstones_are_written_only_with_several_workers(
    data_dir: Path, engine: EmbeddedEngine
) -> None:
    run(engine.create_collection(A, spec(), actor=ACTOR))
    upsert(engine, range(10), seed=8)
    run(engine.delete_points(A, "docs", keys=[parse_point_id(1)], actor=ACTOR))
    with engine.db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM point_tombstones").scalar_one() == 0
    shared = worker(data_dir)
    try:
        run(shared.delete_points(A, "docs", keys=[parse_point_id(2)], actor=ACTOR))
        with shared.db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM point_tombstones").scalar_one() == 1
        EmbeddedEngine.prepare_for_workers(shared.db, data_dir)
        with shared.db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM point_tombstones").scalar_one() == 0
    finally:
        shared.close()
        shared.db.dispose()


def test_index_files_of_collections_that_are_gone_are_removed_before_workers_start(
    data_dir: Path, engine: EmbeddedEngine
) -> None:
    run(engine.create_collection(A, spec(), actor=ACTOR))
    upsert(engine, range(10), seed=8)
    engine.close()  # saves the index of "docs"
    kept = sorted(path.name for path in engine.index_dir.glob("col_*"))
    assert len(kept) == 2  # the graph and its marker
    for ghost in ("col_ghost.hnsw", "col_ghost.json"):  # saved for a deleted collection
        (engine.index_dir / ghost).write_bytes(b"left behind")
    EmbeddedEngine.prepare_for_workers(engine.db, data_dir)
    assert sorted(path.name for path in engine.index_dir.glob("col_*")) == kept


def test_update_collection_reaches_the_other_workers(pair: Any) -> None:
    first, second = pair
    run(first.create_collection(A, spec(), actor=ACTOR))
    upsert(first, range(10), seed=1)
    assert run(second.get_collection(A, "docs")).spec.hnsw.full_scan_threshold == 0
    run(first.update_collection(A, "docs", HnswParams(full_scan_threshold=77), actor=ACTOR))
    assert run(second.get_collection(A, "docs")).spec.hnsw.full_scan_threshold == 77
