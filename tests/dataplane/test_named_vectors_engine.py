"""Named vectors on both engines (issue 16): several vectors per point, each with its own
size, distance and HNSW index; points that lack some of them; searches ``using`` one;
``with_vector`` by name; the same refusals on both engines; restart durability of every
vector's index (embedded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.storage import Database
from bastion.vectors import (
    BadRequest,
    CollectionSpec,
    EmbeddedEngine,
    HnswParams,
    PayloadSelector,
    PointWrite,
    SearchQuery,
    VectorEngine,
    key_to_id,
    parse_point_id,
)
from bastion.vectors.engine import OrderBy, VectorParams
from bastion.vectors.models import collection_spec, points_of
from tests.dataplane.conftest import ACTOR, open_engine, run

A = "ten_a"
TEXT, IMAGE = 8, 5
N = 60


def named_spec(name: str = "multi", *, exact_below_kib: int = 10_000) -> CollectionSpec:
    hnsw = HnswParams(full_scan_threshold=exact_below_kib)
    return CollectionSpec.of_named(
        name,
        [
            VectorParams("text", TEXT, "Cosine", hnsw),
            VectorParams("image", IMAGE, "Euclid", HnswParams(m=8, full_scan_threshold=0)),
        ],
        hnsw,
    )


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(N, TEXT)).astype(np.float32),
        rng.normal(size=(N, IMAGE)).astype(np.float32),
    )


def ingest(engine: VectorEngine, name: str = "multi", **kwargs: Any) -> tuple[Any, Any]:
    """Points 0..N-1; every third point (0, 3, 6, …) has no image vector."""
    run(engine.create_collection(A, named_spec(name, **kwargs), actor=ACTOR))
    text, image = data(1)
    writes = [PointWrite(parse_point_id(i), {"n": i}) for i in range(N)]
    vectors = [
        {"text": text[i]} if i % 3 == 0 else {"text": text[i], "image": image[i]} for i in range(N)
    ]
    assert run(engine.upsert(A, name, writes, vectors, actor=ACTOR)) == N
    return text, image


def search(engine: VectorEngine, vector: np.ndarray, using: str, **kwargs: Any) -> list[Any]:
    return run(engine.search(A, "multi", SearchQuery(vector=vector, using=using, **kwargs)))


def ids(found: list[Any]) -> list[Any]:
    return [key_to_id(point.key) for point in found]


@pytest.mark.parametrize("exact_below_kib", [10_000, 0])  # exact scan, then the graph
def test_each_named_vector_is_searched_with_its_own_distance(
    engine: VectorEngine, exact_below_kib: int
) -> None:
    text, image = ingest(engine, exact_below_kib=exact_below_kib)
    assert ids(search(engine, text[7], "text", limit=1)) == [7]
    top = search(engine, text[7], "text", limit=1)[0]
    assert top.score == pytest.approx(1.0, abs=1e-4)  # Cosine: similarity
    hits = search(engine, image[8], "image", limit=N)
    assert ids(hits)[0] == 8
    assert hits[0].score == pytest.approx(0.0, abs=1e-3)  # Euclid: a distance
    assert not {i for i in ids(hits) if i % 3 == 0}  # points without an image are not found
    assert len(hits) == N - N // 3


def test_with_vector_by_name_and_all_of_them(engine: VectorEngine) -> None:
    text, image = ingest(engine)
    found = search(engine, text[4], "text", limit=1, with_vector=True)[0]
    assert set(found.vector) == {"text", "image"}
    assert np.allclose(found.vector["image"], image[4], atol=1e-6)
    only = search(engine, text[4], "text", limit=1, with_vector=("image",))[0]
    assert set(only.vector) == {"image"}
    lacking = run(
        engine.retrieve(A, "multi", [parse_point_id(3)], with_payload=PayloadSelector(),
                        with_vector=True)
    )  # fmt: skip
    assert set(lacking[0].vector) == {"text"}  # point 3 has no image: absent, not null
    page = run(
        engine.scroll(A, "multi", filter=None, offset_key=None, limit=2,
                      with_payload=PayloadSelector(enabled=False), with_vector=("text",))
    )  # fmt: skip
    assert [set(point.vector) for point in page.points] == [{"text"}, {"text"}]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        ("search_unknown", "audio"),
        ("search_default", "text"),
        ("with_vector_unknown", "audio"),
        ("retrieve_unknown", "audio"),
        ("wrong_size", "expected 8"),
    ],
)
def test_a_vector_the_collection_lacks_or_of_the_wrong_size_is_a_400(
    engine: VectorEngine, call: str, named: str
) -> None:
    text, _image = ingest(engine)
    calls = {
        "search_unknown": lambda: search(engine, text[0], "audio"),
        "search_default": lambda: search(engine, text[0], ""),
        "with_vector_unknown": lambda: search(engine, text[0], "text", with_vector=("audio",)),
        "retrieve_unknown": lambda: run(
            engine.retrieve(
                A,
                "multi",
                [parse_point_id(1)],
                with_payload=PayloadSelector(),
                with_vector=("audio",),
            )
        ),
        "wrong_size": lambda: search(engine, text[0][:5], "text"),
    }
    with pytest.raises(BadRequest) as refused:
        calls[call]()
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("vectors", "named"),
    [
        ([{"audio": np.ones(3, np.float32)}], "audio"),
        ([{"text": np.ones(3, np.float32)}], "expected 8"),
        ([{}], "none of the vectors"),
        ([{"text": np.zeros(TEXT, np.float32)}], "zero vector"),
        ([{"text": np.full(TEXT, np.nan, np.float32)}], "NaN"),
        (np.ones((1, TEXT), np.float32), "name one"),
    ],
)
def test_bad_named_vectors_are_refused_and_nothing_is_written(
    engine: VectorEngine, vectors: Any, named: str
) -> None:
    ingest(engine)
    with pytest.raises(BadRequest) as refused:
        run(
            engine.upsert(A, "multi", [PointWrite(parse_point_id(500), None)], vectors, actor=ACTOR)
        )
    assert named in str(refused.value)
    assert run(engine.count(A, "multi", filter=None)) == N


def test_an_upsert_replaces_every_vector_and_a_delete_leaves_no_trace(
    engine: VectorEngine,
) -> None:
    text, image = ingest(engine, exact_below_kib=0)
    # point 4 had an image: written again with a text vector only, it has none any more
    run(engine.upsert(A, "multi", [PointWrite(parse_point_id(4), None)], [{"text": text[4]}],
                      actor=ACTOR))  # fmt: skip
    assert 4 not in ids(search(engine, image[4], "image", limit=N))
    # point 3 had none: now it has one
    run(engine.upsert(A, "multi", [PointWrite(parse_point_id(3), None)],
                      [{"text": text[3], "image": image[3]}], actor=ACTOR))  # fmt: skip
    assert ids(search(engine, image[3], "image", limit=1)) == [3]
    run(engine.delete_points(A, "multi", keys=[parse_point_id(3)], actor=ACTOR))
    assert 3 not in ids(search(engine, image[3], "image", limit=N))
    assert 3 not in ids(search(engine, text[3], "text", limit=N))


def test_the_collection_reports_its_named_vectors(engine: VectorEngine) -> None:
    ingest(engine)
    info = run(engine.get_collection(A, "multi"))
    assert [(p.name, p.dim, p.distance) for p in info.spec.named] == [
        ("image", IMAGE, "Euclid"),
        ("text", TEXT, "Cosine"),
    ]
    assert info.spec.vector("image").hnsw.m == 8
    assert info.points_count == N
    assert info.indexed_vectors_count == N + (N - N // 3)  # every vector of every point


def test_export_carries_every_named_vector(engine: VectorEngine) -> None:
    text, image = ingest(engine)

    async def everything() -> list[Any]:
        return [point async for point in engine.export(A, "multi")]

    exported = {key_to_id(point.key): point.vector for point in run(everything())}
    assert len(exported) == N
    assert set(exported[0]) == {"text"}
    assert set(exported[1]) == {"text", "image"}
    assert np.allclose(exported[1]["image"], image[1], atol=1e-6)
    assert np.allclose(exported[1]["text"], text[1] / np.linalg.norm(text[1]), atol=1e-6)


def test_update_collection_changes_every_named_vectors_threshold(engine: VectorEngine) -> None:
    ingest(engine)
    run(engine.update_collection(A, "multi", HnswParams(full_scan_threshold=7), actor=ACTOR))
    spec = run(engine.collection_spec(A, "multi"))
    assert {p.hnsw.full_scan_threshold for p in spec.named} == {7}
    assert spec.vector("image").hnsw.m == 8  # what cannot change stays


def test_an_unnamed_collection_still_refuses_names(engine: VectorEngine) -> None:
    run(engine.create_collection(A, CollectionSpec("plain", 4, "Dot"), actor=ACTOR))
    one = [PointWrite(parse_point_id(1), None)]
    run(engine.upsert(A, "plain", one, [{"": np.ones(4, np.float32)}], actor=ACTOR))
    with pytest.raises(BadRequest, match="image"):
        run(engine.upsert(A, "plain", one, [{"image": np.ones(4, np.float32)}], actor=ACTOR))
    with pytest.raises(BadRequest, match="image"):
        run(engine.search(A, "plain", SearchQuery(vector=np.ones(4, np.float32), using="image")))
    found = run(engine.search(A, "plain", SearchQuery(vector=np.ones(4, np.float32),
                                                      with_vector=("",))))  # fmt: skip
    assert found[0].vector == [1.0, 1.0, 1.0, 1.0]


# -- the request bodies ---------------------------------------------------------------


def test_qdrants_create_body_with_named_vectors_and_their_own_hnsw() -> None:
    spec = collection_spec(
        "c",
        {
            "vectors": {
                "text": {"size": 8, "distance": "Cosine"},
                "image": {"size": 5, "distance": "Euclid", "hnsw_config": {"m": 8}},
            },
            "hnsw_config": {"full_scan_threshold": 100},
        },
    )
    assert [(p.name, p.dim, p.offset) for p in spec.named] == [("image", 5, 0), ("text", 8, 5)]
    assert spec.vector("image").hnsw == HnswParams(m=8, full_scan_threshold=100)
    assert spec.vector("text").hnsw == HnswParams(full_scan_threshold=100)
    assert spec.dim == 13  # a stored row holds both


@pytest.mark.parametrize(
    ("vectors", "named"),
    [
        ({"text": {"size": 8}}, "vectors.text.distance"),
        ({"text": {"size": 0, "distance": "Dot"}}, "vectors.text.size"),
        ({"text": {"size": 8, "distance": "Dot", "on_disk": True}}, "vectors.text.on_disk"),
        ({"text": 8}, "vectors.text"),
        ({}, "vectors"),
    ],
)
def test_bad_named_vector_configs_are_a_400_naming_the_field(vectors: Any, named: str) -> None:
    with pytest.raises(BadRequest) as refused:
        collection_spec("c", {"vectors": vectors})
    assert named in str(refused.value)


def test_batch_upserts_of_named_vectors() -> None:
    body = {
        "batch": {
            "ids": [1, 2],
            "vectors": {"text": [[1.0, 2.0], [3.0, 4.0]], "image": [[1.0], [2.0]]},
        }
    }
    writes, vectors = points_of(body, 1 << 20)
    assert [w.key for w in writes] == [parse_point_id(1), parse_point_id(2)]
    assert isinstance(vectors, list)
    assert vectors[1]["image"].tolist() == [2.0]
    with pytest.raises(BadRequest, match=r"batch\.vectors\.image"):
        points_of({"batch": {"ids": [1, 2], "vectors": {"image": [[1.0]]}}}, 1 << 20)


# -- restarts (the embedded engine keeps an index file per vector) ---------------------


def test_every_named_index_is_saved_and_caught_up_after_a_restart(data_dir: Path) -> None:
    engine = open_engine(data_dir)
    text, image = ingest(engine, exact_below_kib=0)
    engine.close()
    engine.db.dispose()
    assert sorted(p.name for p in (data_dir / "vectors").glob("col_*")) == sorted(
        f"{live.id}.v{i}.{ext}"
        for live in engine._collections.values()
        for i in (0, 1)
        for ext in ("hnsw", "json")
    )
    late = open_engine(data_dir)  # a write after the files were saved, then no shutdown
    run(late.upsert(A, "multi", [PointWrite(parse_point_id(10), None)], [{"text": text[10]}],
                    actor=ACTOR))  # fmt: skip
    late.db.dispose()
    again = open_engine(data_dir)
    try:
        live = next(iter(again._collections.values()))
        assert live.anns["image"].live_count == N - N // 3 - 1  # 10 lost its image
        assert live.anns["text"].live_count == N
        assert 10 not in ids(run(again.search(A, "multi", SearchQuery(
            vector=image[10], using="image", limit=N))))  # fmt: skip
        assert ids(run(again.search(A, "multi", SearchQuery(
            vector=image[11], using="image", limit=1)))) == [11]  # fmt: skip
        assert not live.dirty  # saved once caught up: the next start replays nothing
    finally:
        again.close()
        again.db.dispose()


def test_worker_processes_keep_every_named_index_in_step(data_dir: Path) -> None:
    """``--workers N``: another worker's writes of named vectors reach this one's indexes."""
    one, two = (
        EmbeddedEngine(Database(f"sqlite:///{data_dir / 'bastion.db'}"), data_dir, shared=True)
        for _ in range(2)
    )
    one.open()
    two.open()
    try:
        text, image = ingest(one, exact_below_kib=0)
        assert ids(run(two.search(A, "multi", SearchQuery(vector=image[7], using="image",
                                                          limit=1)))) == [7]  # fmt: skip
        run(one.upsert(A, "multi", [PointWrite(parse_point_id(7), None)], [{"text": text[7]}],
                       actor=ACTOR))  # fmt: skip
        found = run(two.search(A, "multi", SearchQuery(vector=image[7], using="image", limit=N)))
        assert 7 not in ids(found)
        live = next(iter(two._collections.values()))
        assert live.anns["image"].live_count == N - N // 3 - 1
    finally:
        for engine in (one, two):
            engine.close()
            engine.db.dispose()


def test_scroll_ordered_by_a_payload_key_returns_named_vectors(engine: VectorEngine) -> None:
    _text, image = ingest(engine)
    run(engine.create_payload_index(A, "multi", "n", "integer", actor=ACTOR))
    found = run(
        engine.scroll_ordered(A, "multi", filter=None, order_by=OrderBy("n", descending=True),
                              limit=4, with_payload=PayloadSelector(), with_vector=("image",))
    )  # fmt: skip
    assert [(key_to_id(point.key), value) for point, value in found] == [
        (59, 59.0), (58, 58.0), (57, 57.0), (56, 56.0)
    ]  # fmt: skip
    assert found[2][0].vector == {}  # 57 has no image
    assert np.allclose(found[0][0].vector["image"], image[59], atol=1e-6)


def test_a_backup_of_named_vectors_round_trips(engine: VectorEngine) -> None:
    from tests.dataplane.test_backup_engines import _backup, _points, _restore, services_of

    ingest(engine)
    services = services_of(engine)
    file = run(_backup(services, "multi"))
    assert run(_restore(services, "copy", file)) == N
    copy = run(engine.collection_spec(A, "copy"))
    assert copy.named == run(engine.collection_spec(A, "multi")).named  # m=8 of image kept
    source, restored = _points(engine, "multi"), _points(engine, "copy")
    assert source.keys() == restored.keys()
    for key, (payload, vectors) in source.items():
        assert restored[key][0] == payload
        assert restored[key][1].keys() == vectors.keys()
        for name, vector in vectors.items():
            assert np.allclose(restored[key][1][name], vector, atol=1e-6)


def test_the_default_vector_beside_named_ones(engine: VectorEngine) -> None:
    """``{"": {…}, "image": {…}}``: plain vectors and searches without ``using`` are the
    default vector's, as in Qdrant."""
    spec = collection_spec(
        "mixed",
        {"vectors": {"": {"size": 3, "distance": "Dot"}, "image": {"size": 2, "distance": "Dot"}}},
    )
    run(engine.create_collection(A, spec, actor=ACTOR))
    plain = np.asarray([[1, 0, 0], [0, 1, 0]], np.float32)
    run(engine.upsert(A, "mixed", [PointWrite(parse_point_id(i), None) for i in (1, 2)], plain,
                      actor=ACTOR))  # fmt: skip
    hit = run(engine.search(A, "mixed", SearchQuery(vector=np.asarray([0, 1, 0], np.float32),
                                                    limit=1, with_vector=True)))  # fmt: skip
    assert ids(hit) == [2]
    assert hit[0].vector == {"": [0.0, 1.0, 0.0]}
    with pytest.raises(BadRequest, match="expected 3"):
        run(engine.upsert(A, "mixed", [PointWrite(parse_point_id(3), None)],
                          np.ones((1, 2), np.float32), actor=ACTOR))  # fmt: skip
