"""The Qdrant calls people use, with the real qdrant-client against a real Bastion (issue 16):
nothing is answered 200 that was not carried out, the default vector by its name ``""``,
conditional upserts, payload operations, batches, queries by id, recommend, MMR, order_by.

``tests/postgres/test_qdrant_calls_on_postgres.py`` runs the same tests on the pgvector
engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.dataplane.test_export_and_audit import events, wait_for
from tests.dataplane.test_http import bearer
from tests.support.server import LiveServer

pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
]
DIM = 8


@pytest.fixture(scope="module")
def dev(live_server: LiveServer) -> QdrantClient:
    return bearer(live_server, role="developer")


@pytest.fixture(scope="module")
def raw(live_server: LiveServer) -> Iterator[httpx.Client]:
    token = live_server.token(role="developer")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        yield client


def unit(i: int) -> list[float]:
    """A deterministic vector per integer (point ``i`` of the tests' collections)."""
    return np.random.default_rng(i).normal(size=DIM).astype(np.float32).tolist()


@pytest.fixture(scope="module")
def notes(dev: QdrantClient) -> str:
    """``notes``: 20 points, payload {"n": i, "group": i % 3, "tag": "even"|"odd"}."""
    dev.create_collection(
        "notes", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    dev.upsert(
        "notes",
        points=[
            models.PointStruct(
                id=i,
                vector=unit(i),
                payload={"n": i, "group": i % 3, "tag": "even" if i % 2 == 0 else "odd"},
            )
            for i in range(20)
        ],
    )
    return "notes"


def refused(call: Any, *names: str) -> str:
    """``call`` answers 400 in Qdrant's envelope, naming every one of ``names``."""
    with pytest.raises(UnexpectedResponse) as caught:
        call()
    assert caught.value.status_code == 400, caught.value.content
    error = str(caught.value.structured()["status"]["error"])
    for name in names:
        assert name in error, error
    return error


# -- never 200 for what was not carried out --------------------------------------------


def test_langchain_create_body_with_the_default_vector_name(raw: httpx.Client) -> None:
    body = {"vectors": {"": {"size": DIM, "distance": "Cosine"}}, "sparse_vectors": {}}
    response = raw.put("/collections/lc", json=body)
    assert response.status_code == 200, response.text
    info = raw.get("/collections/lc").json()["result"]
    assert info["config"]["params"]["vectors"] == {"size": DIM, "distance": "Cosine"}


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"quantization_config": models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8))},
         "quantization_config"),
        ({"sparse_vectors_config": {"text": models.SparseVectorParams()}}, "sparse_vectors"),
        ({"metadata": {"owner": "team-a"}}, "metadata"),
        ({"shard_number": 3}, "shard_number"),
        ({"optimizers_config": models.OptimizersConfigDiff(indexing_threshold=1)},
         "optimizers_config"),
    ],
)  # fmt: skip
def test_unsupported_collection_settings_are_refused_by_name(
    dev: QdrantClient, settings: dict[str, Any], named: str
) -> None:
    vectors = models.VectorParams(size=DIM, distance=models.Distance.DOT)
    refused(lambda: dev.create_collection("dropped", vectors_config=vectors, **settings), named)
    assert not dev.collection_exists("dropped")


def test_unsupported_vector_settings_are_refused_by_name(dev: QdrantClient) -> None:
    multi = models.VectorParams(
        size=DIM,
        distance=models.Distance.COSINE,
        multivector_config=models.MultiVectorConfig(
            comparator=models.MultiVectorComparator.MAX_SIM
        ),
    )
    refused(lambda: dev.create_collection("dropped", vectors_config=multi), "multivector_config")
    on_disk = models.VectorParams(size=DIM, distance=models.Distance.COSINE, on_disk=True)
    refused(lambda: dev.create_collection("dropped", vectors_config=on_disk), "vectors.on_disk")
    assert not dev.collection_exists("dropped")


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("points/query", {"query": unit(1), "prefetch": [{"query": unit(2)}]}, "prefetch"),
        ("points/query", {"query": {"fusion": "rrf"}}, "query.fusion"),
        ("points/query", {"query": {"nearest": unit(1), "sample": 1}}, "query.sample"),
        ("points/query", {"query": unit(1), "lookup_from": {"collection": "x"}}, "lookup_from"),
        ("points/query", {"query": unit(1), "limt": 3}, "limt"),
        ("points/query", {"query": unit(1), "using": "image"}, "image"),
        ("points/search", {"vector": {"name": "image", "vector": unit(1)}}, "image"),
        ("points/search", {"vector": unit(1), "params": {"quantization": {}}}, "quantization"),
        ("points/scroll", {"limit": 3, "consistency": "all"}, "consistency"),
        ("points/count", {"filter": None, "exat": True}, "exat"),
        ("points", {"ids": [1], "with_vector": ["image"]}, "image"),
        ("points/delete", {"points": [1], "shard_key": "a"}, "shard_key"),
    ],
)
def test_unsupported_request_fields_are_refused_by_name(
    raw: httpx.Client, notes: str, path: str, body: dict[str, Any], named: str
) -> None:
    response = raw.post(f"/collections/{notes}/{path}", json=body)
    assert response.status_code == 400, response.text
    assert named in response.json()["status"]["error"]


def test_deeply_wrapped_vectors_are_a_400_not_a_500(raw: httpx.Client, notes: str) -> None:
    wrapped: Any = unit(1)
    for _ in range(900):
        wrapped = {"": wrapped}
    for path, body in (
        ("points/query", {"query": wrapped}),
        ("points/search", {"vector": wrapped}),
    ):
        response = raw.post(f"/collections/{notes}/{path}", json=body)
        assert response.status_code == 400, response.text
        assert "wrapped too deeply" in response.json()["status"]["error"]


def test_upsert_with_unknown_fields_writes_nothing(raw: httpx.Client, notes: str) -> None:
    point = {"id": 500, "vector": unit(500), "payload": {}, "vectors": {"x": [1.0]}}
    response = raw.put(f"/collections/{notes}/points", json={"points": [point]})
    assert response.status_code == 400
    assert "points[0].vectors" in response.json()["status"]["error"]
    found = raw.post(f"/collections/{notes}/points", json={"ids": [500]}).json()["result"]
    assert found == []


def test_the_default_vector_by_its_name(dev: QdrantClient, notes: str) -> None:
    by_name = dev.query_points(notes, query=unit(4), using="", limit=3).points
    plain = dev.query_points(notes, query=unit(4), limit=3).points
    assert [p.id for p in by_name] == [p.id for p in plain]
    assert by_name[0].id == 4
    found = dev.retrieve(notes, ids=[4], with_vectors=[""])
    assert found[0].vector is not None


def test_a_vector_the_collection_lacks_is_a_400(dev: QdrantClient, notes: str) -> None:
    refused(lambda: dev.query_points(notes, query=unit(4), using="image"), "image")


# -- conditional upserts -------------------------------------------------------------


def test_upsert_update_filter_protects_points_that_do_not_match(
    dev: QdrantClient, raw: httpx.Client
) -> None:
    dev.create_collection(
        "guarded", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
    )
    dev.upsert(
        "guarded",
        points=[models.PointStruct(id=i, vector=unit(i), payload={"v": 1}) for i in (1, 2)],
    )
    dev.upsert(
        "guarded",
        points=[models.PointStruct(id=1, vector=unit(9), payload={"v": 2})],
        update_filter=models.Filter(
            must=[models.FieldCondition(key="v", match=models.MatchValue(value=5))]
        ),
    )
    assert dev.retrieve("guarded", ids=[1])[0].payload == {"v": 1}
    dev.upsert(
        "guarded",
        points=[models.PointStruct(id=i, vector=unit(i), payload={"v": 3}) for i in (2, 3)],
        update_mode=models.UpdateMode.INSERT_ONLY,
    )
    found = {p.id: p.payload for p in dev.retrieve("guarded", ids=[1, 2, 3])}
    assert found == {1: {"v": 1}, 2: {"v": 1}, 3: {"v": 3}}
    body = {"points": [{"id": 4, "vector": unit(4)}], "update_mode": "sometimes"}
    response = raw.put("/collections/guarded/points", json=body)
    assert response.status_code == 400
    assert "update_mode" in response.json()["status"]["error"]


# -- payload operations ------------------------------------------------------------


@pytest.fixture
def shelf(dev: QdrantClient) -> Iterator[str]:
    """A fresh small collection per test: 6 points, payload {"i": i, "kind": "a"|"b"}."""
    dev.create_collection(
        "shelf", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID)
    )
    dev.upsert(
        "shelf",
        points=[
            models.PointStruct(id=i, vector=unit(i), payload={"i": i, "kind": "ab"[i % 2]})
            for i in range(6)
        ],
    )
    yield "shelf"
    dev.delete_collection("shelf")


def payloads(dev: QdrantClient, name: str) -> dict[Any, Any]:
    return {p.id: p.payload for p in dev.scroll(name, limit=100)[0]}


KIND_A = models.Filter(must=[models.FieldCondition(key="kind", match=models.MatchValue(value="a"))])


def test_set_payload_by_ids_and_by_filter(dev: QdrantClient, shelf: str) -> None:
    dev.set_payload(shelf, payload={"seen": True}, points=[1, 2])
    dev.set_payload(shelf, payload={"x": 1}, points=KIND_A, key="meta.flags")
    found = payloads(dev, shelf)
    assert found[1] == {"i": 1, "kind": "b", "seen": True}
    assert found[2] == {"i": 2, "kind": "a", "seen": True, "meta": {"flags": {"x": 1}}}
    assert found[4] == {"i": 4, "kind": "a", "meta": {"flags": {"x": 1}}}
    seen = models.FieldCondition(key="seen", match=models.MatchValue(value=True))
    assert dev.count(shelf, count_filter=models.Filter(must=[seen])).count == 2


def test_overwrite_delete_and_clear_payload(dev: QdrantClient, shelf: str) -> None:
    dev.overwrite_payload(shelf, payload={"only": "this"}, points=[0])
    dev.delete_payload(shelf, keys=["i"], points=KIND_A)
    dev.clear_payload(shelf, points_selector=models.PointIdsList(points=[5]))
    found = payloads(dev, shelf)
    assert found[0] == {"only": "this"}
    assert found[2] == {"kind": "a"}
    assert found[3] == {"i": 3, "kind": "b"}
    assert found[5] == {}
    dev.clear_payload(shelf, points_selector=models.FilterSelector(filter=KIND_A))
    assert payloads(dev, shelf)[4] == {}


def test_payload_of_a_missing_point_is_a_404_and_changes_nothing(
    dev: QdrantClient, shelf: str
) -> None:
    with pytest.raises(UnexpectedResponse) as caught:
        dev.set_payload(shelf, payload={"x": 1}, points=[1, 99])
    assert caught.value.status_code == 404
    assert "99" in str(caught.value.structured()["status"]["error"])
    assert payloads(dev, shelf)[1] == {"i": 1, "kind": "b"}


def test_payload_operations_need_points_write(
    live_server: LiveServer, dev: QdrantClient, shelf: str
) -> None:
    viewer = bearer(live_server, role="viewer")
    for call in (
        lambda: viewer.set_payload(shelf, payload={"x": 1}, points=[1]),
        lambda: viewer.overwrite_payload(shelf, payload={"x": 1}, points=[1]),
        lambda: viewer.delete_payload(shelf, keys=["i"], points=[1]),
        lambda: viewer.clear_payload(shelf, points_selector=[1]),
    ):
        with pytest.raises(UnexpectedResponse) as caught:
            call()
        assert caught.value.status_code == 403
    assert payloads(dev, shelf)[1] == {"i": 1, "kind": "b"}


def test_payload_operations_are_audited(
    live_server: LiveServer, dev: QdrantClient, shelf: str
) -> None:
    before = len(events(live_server, "points.payload_updated"))
    dev.set_payload(shelf, payload={"y": 1}, points=KIND_A)
    dev.clear_payload(shelf, points_selector=[1])
    found = wait_for(live_server, "points.payload_updated", before + 2)[before:]
    details = sorted((e.details["operation"], e.details["count"], e.details["by_filter"])
                     for e in found)  # fmt: skip
    assert details == [("clear", 1, False), ("set", 3, True)]


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("points/payload", {"payload": {"x": 1}}, "filter"),
        ("points/payload", {"payload": {"x": 1}, "points": [1], "filter": {}}, "not both"),
        ("points/payload", {"payload": [1], "points": [1]}, "payload"),
        ("points/payload", {"payload": {"x": 1}, "points": [1], "key": "a[0]"}, "a[0]"),
        ("points/payload", {"payload": {"x": 1}, "points": [1], "sharding": 1}, "sharding"),
        ("points/payload/delete", {"keys": [], "points": [1]}, "keys"),
        ("points/payload/clear", {}, "filter"),
    ],
)
def test_bad_payload_requests_are_400(
    raw: httpx.Client, shelf: str, path: str, body: dict[str, Any], named: str
) -> None:
    response = raw.post(f"/collections/{shelf}/{path}", json=body)
    assert response.status_code == 400, response.text
    assert named in response.json()["status"]["error"]


# -- batches, queries by id, recommend, MMR, order_by -------------------------------


def normalised(i: int) -> np.ndarray:
    vector = np.asarray(unit(i), np.float32)
    return vector / np.linalg.norm(vector)


def test_query_and_search_batches_answer_as_single_calls(dev: QdrantClient, notes: str) -> None:
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
    requests = [
        models.QueryRequest(query=unit(3), limit=4),
        models.QueryRequest(query=unit(7), filter=flt, limit=3, with_payload=True),
    ]
    batch = dev.query_batch_points(notes, requests=requests)
    single = [
        dev.query_points(notes, query=unit(3), limit=4),
        dev.query_points(notes, query=unit(7), query_filter=flt, limit=3, with_payload=True),
    ]
    assert [[p.id for p in r.points] for r in batch] == [[p.id for p in r.points] for r in single]
    assert all(p.payload and p.payload["group"] == 1 for p in batch[1].points)


def test_legacy_search_batch(raw: httpx.Client, dev: QdrantClient, notes: str) -> None:
    """``search_batch`` (gone from qdrant-client 1.20, still sent by older clients)."""
    body = {"searches": [{"vector": unit(5), "limit": 2}, {"vector": unit(6), "limit": 1}]}
    response = raw.post(f"/collections/{notes}/points/search/batch", json=body)
    assert response.status_code == 200, response.text
    found = [[p["id"] for p in answer] for answer in response.json()["result"]]
    assert found == [
        [p.id for p in dev.query_points(notes, query=unit(5), limit=2).points],
        [6],
    ]
    bad = {"searches": [{"vector": unit(5)}, {"vector": unit(6), "prefetch": []}]}
    response = raw.post(f"/collections/{notes}/points/search/batch", json=bad)
    assert response.status_code == 400
    assert "searches[1].prefetch" in response.json()["status"]["error"]


def test_query_by_point_id_leaves_the_point_out(dev: QdrantClient, notes: str) -> None:
    by_id = dev.query_points(notes, query=4, limit=5).points
    by_vector = dev.query_points(notes, query=unit(4), limit=6).points
    assert [p.id for p in by_id] == [p.id for p in by_vector if p.id != 4][:5]
    with pytest.raises(UnexpectedResponse) as caught:
        dev.query_points(notes, query=404, limit=5)
    assert caught.value.status_code == 404


def test_recommend_with_positive_and_negative_examples(
    raw: httpx.Client, dev: QdrantClient, notes: str
) -> None:
    target = 2 * ((normalised(1) + normalised(2)) / 2) - normalised(3)
    expected = [p.id for p in dev.query_points(notes, query=target.tolist(), limit=8).points]
    expected = [i for i in expected if i not in (1, 2, 3)][:4]
    body = {"positive": [1, 2], "negative": [3], "limit": 4}
    legacy = raw.post(f"/collections/{notes}/points/recommend", json=body).json()["result"]
    assert [p["id"] for p in legacy] == expected
    mixed = models.RecommendInput(positive=[1, unit(2)], negative=[3])  # an id and a vector
    universal = dev.query_points(notes, query=models.RecommendQuery(recommend=mixed), limit=4)
    average = (normalised(1) + np.asarray(unit(2), np.float32)) / 2
    target = 2 * average - normalised(3)
    nearest = dev.query_points(notes, query=target.tolist(), limit=6).points
    assert [p.id for p in universal.points] == [p.id for p in nearest if p.id not in (1, 3)][:4]
    batch = raw.post(f"/collections/{notes}/points/recommend/batch", json={"searches": [body]})
    assert [p["id"] for p in batch.json()["result"][0]] == expected
    unknown = raw.post(
        f"/collections/{notes}/points/recommend", json={"positive": [1], "strategy": "worst_score"}
    )
    assert unknown.status_code == 400
    assert "worst_score" in unknown.json()["status"]["error"]


def reference_mmr(query: np.ndarray, vectors: np.ndarray, diversity: float, k: int) -> list[int]:
    """Maximal marginal relevance, written out plainly (cosine: unit vectors, dot)."""
    relevance = vectors @ query
    chosen: list[int] = []
    while len(chosen) < min(k, len(vectors)):
        best, best_score = -1, -np.inf
        for i in range(len(vectors)):
            if i in chosen:
                continue
            penalty = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            score = (1 - diversity) * relevance[i] - diversity * penalty
            if score > best_score:
                best, best_score = i, score
        chosen.append(best)
    return chosen


def test_mmr_diversifies_the_nearest_candidates(dev: QdrantClient) -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(size=DIM)
    near = [base + 0.05 * rng.normal(size=DIM) for _ in range(6)]  # near-duplicates
    far = [rng.normal(size=DIM) for _ in range(14)]
    data = np.asarray(near + far, np.float32)
    dev.create_collection(
        "varied", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    dev.upsert("varied", points=[models.PointStruct(id=i, vector=v.tolist())
                                 for i, v in enumerate(data)])  # fmt: skip
    query = base.tolist()
    plain = [p.id for p in dev.query_points("varied", query=query, limit=4).points]
    diverse = dev.query_points(
        "varied",
        query=models.NearestQuery(
            nearest=query, mmr=models.Mmr(diversity=0.8, candidates_limit=20)
        ),
        limit=4,
    ).points
    unit_data = data / np.linalg.norm(data, axis=1, keepdims=True)
    q = np.asarray(query) / np.linalg.norm(query)
    assert [p.id for p in diverse] == reference_mmr(q, unit_data, 0.8, 4)
    assert len(set(plain) & set(range(6))) == 4  # plain nearest: all near-duplicates
    assert len({p.id for p in diverse} & set(range(6))) < 4
    same = dev.query_points(
        "varied", query=models.NearestQuery(nearest=query, mmr=models.Mmr(diversity=0.0)), limit=4
    ).points
    assert [p.id for p in same] == plain
    refused(
        lambda: dev.query_points(
            "varied", query=models.NearestQuery(nearest=query, mmr=models.Mmr(diversity=2.0))
        ),
        "diversity",
    )


def test_scroll_ordered_by_an_indexed_payload_key(dev: QdrantClient, notes: str) -> None:
    refused(lambda: dev.scroll(notes, order_by="n"), "payload index")
    dev.create_payload_index(notes, "n", models.PayloadSchemaType.INTEGER)
    points, next_offset = dev.scroll(
        notes, order_by=models.OrderBy(key="n", direction=models.Direction.DESC), limit=5
    )
    assert [p.id for p in points] == [19, 18, 17, 16, 15]
    assert next_offset is None
    page, _ = dev.scroll(notes, order_by=models.OrderBy(key="n", start_from=7), limit=3)
    assert [p.id for p in page] == [7, 8, 9]
    odd = models.Filter(
        must=[models.FieldCondition(key="tag", match=models.MatchValue(value="odd"))]
    )
    page, _ = dev.scroll(notes, scroll_filter=odd, order_by="n", limit=3)
    assert [p.id for p in page] == [1, 3, 5]


# -- routes Bastion does not serve ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "named"),
    [
        ("GET", "/collections/notes/snapshots", "snapshots"),
        ("POST", "/collections/notes/snapshots/upload", "snapshots"),
        ("POST", "/collections/notes/points/recommend/groups", "recommend_groups"),
        ("POST", "/collections/notes/points/discover", "discovery"),
        ("POST", "/collections/notes/points/batch", "batch_update_points"),
        ("GET", "/collections/notes/points/7", "GET of one point"),
        ("GET", "/collections/notes/snapshots/a.snapshot", "snapshots"),
        ("GET", "/cluster", "cluster"),
        ("GET", "/telemetry", "telemetry"),
    ],
)
def test_unserved_qdrant_routes_name_the_feature(
    raw: httpx.Client, notes: str, method: str, path: str, named: str
) -> None:
    response = raw.request(method, path, json={})
    assert response.status_code == 501, response.text
    error = response.json()["status"]["error"]
    assert named in error
    assert "not supported by Bastion" in error


def test_unserved_calls_through_the_client(dev: QdrantClient, notes: str) -> None:
    for call, named in (
        (lambda: dev.list_snapshots(notes), "snapshots"),
        (lambda: dev.create_snapshot(notes), "snapshots"),
    ):
        with pytest.raises(UnexpectedResponse) as caught:
            call()
        assert caught.value.status_code == 501
        assert named in str(caught.value.structured()["status"]["error"])


def test_a_path_that_is_no_route_is_a_404_naming_it(raw: httpx.Client) -> None:
    response = raw.get("/collections/notes/nonsense")
    assert response.status_code == 404
    assert "GET /collections/notes/nonsense is no route" in response.json()["status"]["error"]


# -- update_collection -----------------------------------------------------------------


def test_update_collection_changes_what_applies(
    live_server: LiveServer, dev: QdrantClient, shelf: str
) -> None:
    before = len(events(live_server, "collection.updated"))
    assert dev.update_collection(shelf, hnsw_config=models.HnswConfigDiff(full_scan_threshold=7))
    assert dev.get_collection(shelf).config.hnsw_config.full_scan_threshold == 7
    assert dev.query_points(shelf, query=unit(2), limit=1).points[0].id == 2
    same_m = models.HnswConfigDiff(m=16, full_scan_threshold=9)
    dev.update_collection(shelf, vectors_config={"": models.VectorParamsDiff(hnsw_config=same_m)})
    assert dev.get_collection(shelf).config.hnsw_config.full_scan_threshold == 9
    found = wait_for(live_server, "collection.updated", before + 2)[before:]
    assert [e.details["full_scan_threshold"] for e in found] == [7, 9]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"hnsw_config": models.HnswConfigDiff(m=32)}, "hnsw_config.m"),
        ({"optimizers_config": models.OptimizersConfigDiff(indexing_threshold=0)},
         "optimizers_config"),
        ({"quantization_config": models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8))},
         "quantization_config"),
        ({"collection_params": models.CollectionParamsDiff(replication_factor=2)},
         "params.replication_factor"),
        ({"vectors_config": {"image": models.VectorParamsDiff(on_disk=False)}}, "vectors"),
    ],
)  # fmt: skip
def test_update_collection_refuses_what_does_not_apply(
    dev: QdrantClient, shelf: str, settings: dict[str, Any], named: str
) -> None:
    refused(lambda: dev.update_collection(shelf, **settings), named)
    assert dev.get_collection(shelf).config.hnsw_config.m == 16


def test_update_collection_is_collection_administration(
    live_server: LiveServer, shelf: str
) -> None:
    viewer = bearer(live_server, role="viewer")
    with pytest.raises(UnexpectedResponse) as caught:
        viewer.update_collection(shelf, hnsw_config=models.HnswConfigDiff(full_scan_threshold=1))
    assert caught.value.status_code == 403


# -- groups ----------------------------------------------------------------------------


def test_query_points_groups(dev: QdrantClient, raw: httpx.Client, notes: str) -> None:
    ranked = dev.query_points(notes, query=unit(11), limit=20, with_payload=True).points
    expected: dict[Any, list[Any]] = {}
    for point in ranked:
        assert point.payload is not None
        expected.setdefault(point.payload["group"], [])
        if len(expected[point.payload["group"]]) < 2:
            expected[point.payload["group"]].append(point.id)
    found = dev.query_points_groups(
        notes, group_by="group", query=unit(11), group_size=2, limit=2, with_payload=["group"]
    ).groups
    assert [(g.id, [h.id for h in g.hits]) for g in found] == list(expected.items())[:2]
    assert all(h.payload == {"group": g.id} for g in found for h in g.hits)
    by_tag = dev.query_points_groups(notes, group_by="tag", query=11, group_size=3).groups
    assert {g.id for g in by_tag} == {"even", "odd"}
    assert all(11 not in [h.id for h in g.hits] for g in by_tag)  # the example is left out
    body = {"vector": unit(11), "group_by": "group", "group_size": 2, "limit": 2}
    legacy = raw.post(f"/collections/{notes}/points/search/groups", json=body).json()
    assert [(g["id"], [h["id"] for h in g["hits"]]) for g in legacy["result"]["groups"]] == (
        list(expected.items())[:2]
    )
    refused(lambda: dev.query_points_groups(notes, group_by="group", query=None), "needs a query")


# -- collection aliases -----------------------------------------------------------------


def test_aliases_reach_their_collection(dev: QdrantClient, notes: str) -> None:
    dev.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=notes, alias_name="notes-live")
            )
        ]
    )
    assert dev.count("notes-live").count == dev.count(notes).count
    found = dev.query_points("notes-live", query=unit(4), limit=1).points
    assert found[0].id == 4
    assert [(a.alias_name, a.collection_name) for a in dev.get_aliases().aliases] == [
        ("notes-live", notes)
    ]
    dev.update_collection_aliases(
        change_aliases_operations=[
            models.RenameAliasOperation(
                rename_alias=models.RenameAlias(
                    old_alias_name="notes-live", new_alias_name="notes-v2"
                )
            )
        ]
    )
    listed = dev.get_collection_aliases(notes).aliases
    assert [a.alias_name for a in listed] == ["notes-v2"]
    with pytest.raises(UnexpectedResponse) as caught:
        dev.count("notes-live")
    assert caught.value.status_code == 404
    refused(
        lambda: dev.update_collection_aliases(
            change_aliases_operations=[
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name=notes, alias_name=notes)
                )
            ]
        ),
        "already exists",
    )
    dev.update_collection_aliases(
        change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="notes-v2"))
        ]
    )
    assert dev.get_aliases().aliases == []


def test_an_alias_reaches_only_what_its_caller_is_granted(
    live_server: LiveServer, dev: QdrantClient
) -> None:
    """A service account limited to ``team-a-*`` reaches ``hr`` through no alias, whatever
    the alias is called; an alias of its own collection it may use."""
    vectors = models.VectorParams(size=DIM, distance=models.Distance.DOT)
    for name in ("hr", "team-a-docs"):
        dev.create_collection(name, vectors_config=vectors)
        dev.upsert(name, points=[models.PointStruct(id=1, vector=unit(1), payload={"of": name})])
    dev.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="hr", alias_name="team-a-hr")
            ),
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="team-a-docs", alias_name="docs")
            ),
        ]
    )
    narrowed = QdrantClient(
        url=live_server.url,
        api_key=live_server.api_key(role="viewer", collections=["team-a-*"]),
        check_compatibility=False,
    )
    with pytest.raises(UnexpectedResponse) as caught:
        narrowed.retrieve("team-a-hr", ids=[1])
    assert caught.value.status_code == 403
    assert narrowed.retrieve("docs", ids=[1])[0].payload == {"of": "team-a-docs"}
    assert [a.alias_name for a in narrowed.get_aliases().aliases] == ["docs"]
    other_tenant = bearer(live_server, role="developer", tenant="elsewhere")
    with pytest.raises(UnexpectedResponse) as caught:
        other_tenant.count("docs")
    assert caught.value.status_code == 404
    weak = bearer(live_server, role="viewer")
    with pytest.raises(UnexpectedResponse) as caught:
        weak.update_collection_aliases(
            change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="docs"))
            ]
        )
    assert caught.value.status_code == 403
    dev.delete_collection("hr")  # its aliases go with it
    assert [a.alias_name for a in dev.get_aliases().aliases] == ["docs"]
    with pytest.raises(UnexpectedResponse) as caught:
        dev.create_collection("docs", vectors_config=vectors)
    assert caught.value.status_code == 409
