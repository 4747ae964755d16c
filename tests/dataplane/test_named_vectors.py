"""Named vectors with the real qdrant-client against a real Bastion (issue 16): a collection
made as Qdrant's own docs make one (``vectors_config={"image": …, "text": …}``), upserts
of named vectors (one point lacking one of them, and as a batch), every query ``using`` a
name (by vector, by point id, recommend, MMR, groups, batches, the search route's named
form), ``with_vectors`` by name, the export, and a clear 400 for every bad input.

``tests/postgres/test_named_vectors_on_postgres.py`` runs the same tests on the pgvector
engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.dataplane.test_http import bearer
from tests.dataplane.test_qdrant_calls import refused
from tests.support.server import LiveServer

pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
]
IMAGE, TEXT = 4, 8
N = 30


def image(i: int) -> list[float]:
    return np.random.default_rng(1000 + i).normal(size=IMAGE).astype(np.float32).tolist()


def text(i: int) -> list[float]:
    return np.random.default_rng(2000 + i).normal(size=TEXT).astype(np.float32).tolist()


@pytest.fixture(scope="module")
def dev(live_server: LiveServer) -> QdrantClient:
    return bearer(live_server, role="developer")


@pytest.fixture(scope="module")
def raw(live_server: LiveServer) -> Iterator[httpx.Client]:
    token = live_server.token(role="developer")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def multi(dev: QdrantClient) -> str:
    """As Qdrant's docs ("Collections: with multiple vectors"): ``image`` (Dot, 4) and
    ``text`` (Cosine, 8). Points 0..N-1, payload {"n", "group"}; point 5 has no image."""
    dev.create_collection(
        "multi",
        vectors_config={
            "image": models.VectorParams(size=IMAGE, distance=models.Distance.DOT),
            "text": models.VectorParams(
                size=TEXT,
                distance=models.Distance.COSINE,
                hnsw_config=models.HnswConfigDiff(m=8),
            ),
        },
    )
    dev.upsert(
        "multi",
        points=[
            models.PointStruct(
                id=i,
                vector={"text": text(i)} if i == 5 else {"image": image(i), "text": text(i)},
                payload={"n": i, "group": i % 3},
            )
            for i in range(N)
        ],
    )
    return "multi"


def test_the_collection_reports_its_named_vectors_as_qdrant_does(
    dev: QdrantClient, raw: httpx.Client, multi: str
) -> None:
    info = dev.get_collection(multi)
    vectors = info.config.params.vectors
    assert isinstance(vectors, dict)
    assert vectors["image"].size == IMAGE
    assert vectors["image"].distance == models.Distance.DOT
    assert vectors["text"].distance == models.Distance.COSINE
    assert vectors["text"].hnsw_config is not None
    assert vectors["text"].hnsw_config.m == 8
    assert info.points_count == N
    params = raw.get(f"/collections/{multi}").json()["result"]["config"]["params"]
    assert params["vectors"]["image"] == {"size": IMAGE, "distance": "Dot"}


def test_query_using_each_named_vector(dev: QdrantClient, multi: str) -> None:
    by_image = dev.query_points(multi, query=image(7), using="image", limit=N).points
    assert 5 not in [p.id for p in by_image]  # it has no image vector
    assert len(by_image) == N - 1
    assert by_image[0].score == pytest.approx(max(np.dot(image(7), image(i)) for i in range(N)
                                                  if i != 5), rel=1e-5)  # fmt: skip
    by_text = dev.query_points(multi, query=text(7), using="text", limit=3).points
    assert by_text[0].id == 7
    assert by_text[0].score == pytest.approx(1.0, abs=1e-5)


def test_with_vectors_by_name(dev: QdrantClient, multi: str) -> None:
    found = dev.query_points(multi, query=text(3), using="text", limit=1, with_vectors=["image"])
    assert set(found.points[0].vector) == {"image"}  # type: ignore[arg-type]
    assert np.allclose(found.points[0].vector["image"], image(3), atol=1e-6)  # type: ignore[index]
    both = dev.retrieve(multi, ids=[3, 5], with_vectors=True)
    assert {p.id: sorted(p.vector) for p in both} == {  # type: ignore[arg-type]
        3: ["image", "text"],
        5: ["text"],
    }
    page, _next = dev.scroll(multi, limit=2, with_vectors=["text"])
    assert all(set(p.vector) == {"text"} for p in page)  # type: ignore[arg-type]


def test_the_search_routes_named_vector_form(raw: httpx.Client, multi: str) -> None:
    body = {"vector": {"name": "image", "vector": image(9)}, "limit": 1, "with_vector": ["image"]}
    found = raw.post(f"/collections/{multi}/points/search", json=body)
    assert found.status_code == 200, found.text
    [hit] = found.json()["result"]
    assert set(hit["vector"]) == {"image"}
    batch = {"searches": [body, {"vector": {"name": "text", "vector": text(9)}, "limit": 1}]}
    answers = raw.post(f"/collections/{multi}/points/search/batch", json=batch).json()["result"]
    assert answers[1][0]["id"] == 9


def test_queries_by_id_recommend_mmr_groups_and_batches_use_the_named_vector(
    dev: QdrantClient, multi: str
) -> None:
    by_id = dev.query_points(multi, query=7, using="text", limit=1).points
    nearest_other = dev.query_points(multi, query=text(7), using="text", limit=2).points[1]
    assert by_id[0].id == nearest_other.id  # the example itself is left out
    recommended = dev.query_points(
        multi,
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=[7], negative=[8])),
        using="image",
        limit=3,
    ).points
    assert 7 not in [p.id for p in recommended]
    assert len(recommended) == 3
    diverse = dev.query_points(
        multi,
        query=models.NearestQuery(nearest=text(4), mmr=models.Mmr(diversity=0.5)),
        using="text",
        limit=4,
        with_vectors=True,
    ).points
    assert diverse[0].id == 4
    assert len(diverse) == 4
    assert set(diverse[0].vector) == {"image", "text"}  # type: ignore[arg-type]
    groups = dev.query_points_groups(
        multi, query=image(2), using="image", group_by="group", group_size=2, limit=3
    ).groups
    assert len(groups) == 3
    batch = dev.query_batch_points(
        multi,
        requests=[
            models.QueryRequest(query=image(1), using="image", limit=1),
            models.QueryRequest(query=text(2), using="text", limit=1),
        ],
    )
    alone = dev.query_points(multi, query=image(1), using="image", limit=1).points
    assert [answer.points[0].id for answer in batch] == [alone[0].id, 2]


def test_a_batch_upsert_of_named_vectors(dev: QdrantClient) -> None:
    dev.create_collection(
        "batched",
        vectors_config={
            "a": models.VectorParams(size=2, distance=models.Distance.EUCLID),
            "b": models.VectorParams(size=3, distance=models.Distance.DOT),
        },
    )
    dev.upsert(
        "batched",
        points=models.Batch(
            ids=[1, 2],
            vectors={"a": [[0.0, 1.0], [5.0, 5.0]], "b": [[1.0, 0, 0], [0, 1.0, 0]]},
            payloads=[{"k": 1}, {"k": 2}],
        ),
    )
    hit = dev.query_points("batched", query=[5.0, 4.0], using="a", limit=1).points[0]
    assert hit.id == 2
    assert hit.score == pytest.approx(1.0)
    assert dev.retrieve("batched", ids=[1], with_vectors=["b"])[0].vector == {"b": [1.0, 0, 0]}


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.query_points("multi", query=image(1), using="audio"), "audio"),
        (lambda c: c.query_points("multi", query=image(1)), "name one"),
        (lambda c: c.query_points("multi", query=text(1), using="image"), "expected 4"),
        (lambda c: c.query_points("multi", query=5, using="image"), "no vector 'image'"),
        (lambda c: c.retrieve("multi", ids=[1], with_vectors=["audio"]), "audio"),
        (
            lambda c: c.query_points(
                "multi",
                query=models.NearestQuery(nearest=text(1), mmr=models.Mmr()),
                using="text",
                with_vectors=["audio"],
            ),
            "audio",
        ),
        (
            lambda c: c.upsert("multi", [models.PointStruct(id=99, vector={"audio": [1.0]})]),
            "audio",
        ),
        (
            lambda c: c.upsert("multi", [models.PointStruct(id=99, vector={"image": [1.0]})]),
            "expected 4",
        ),
        (lambda c: c.upsert("multi", [models.PointStruct(id=99, vector={})]), "none of"),
        (lambda c: c.upsert("multi", [models.PointStruct(id=99, vector=text(1))]), "name one"),
    ],
)
def test_bad_named_vector_input_is_a_clear_400(
    dev: QdrantClient, multi: str, call: Any, named: str
) -> None:
    refused(lambda: call(dev), named)
    assert dev.count(multi).count == N  # nothing was written


def test_bad_collection_configs_are_a_400_naming_the_vector(raw: httpx.Client) -> None:
    for vectors, named in (
        ({"text": {"size": 4}}, "vectors.text.distance"),
        ({"text": {"size": 4, "distance": "Dot", "multivector_config": {}}}, "multivector"),
        ({"text": {"size": 4, "distance": "Dot"}, "bad": 4}, "vectors.bad"),
    ):
        response = raw.put("/collections/bad", json={"vectors": vectors})
        assert response.status_code == 400, response.text
        assert named in response.json()["status"]["error"]
    assert raw.get("/collections/bad/exists").json()["result"]["exists"] is False


def test_the_export_carries_named_vectors(live_server: LiveServer, multi: str) -> None:
    admin = {"Authorization": f"Bearer {live_server.token(role='admin', acr='aal3')}"}
    response = httpx.post(f"{live_server.url}/collections/{multi}/export", headers=admin)
    assert response.status_code == 200, response.text
    points = {p["id"]: p for p in map(orjson.loads, response.content.splitlines())}
    assert set(points[5]["vector"]) == {"text"}
    assert np.allclose(points[6]["vector"]["image"], image(6), atol=1e-6)
    assert len(points) == N


# -- recommend's best_score and sum_scores (Qdrant's RecoBestScoreQuery / RecoSumScoresQuery)


def sigmoid(x: float) -> float:
    return 0.5 * (x / (1 + abs(x)) + 1)


def reference(
    strategy: str, candidates: dict[int, np.ndarray], positive: list[Any], negative: list[Any],
    similarity: Any,
) -> list[tuple[int, float]]:  # fmt: skip
    """Each candidate's score, written out plainly from Qdrant's definitions; best first."""
    scored = []
    for i, c in candidates.items():
        to_positive = [similarity(c, p) for p in positive]
        to_negative = [similarity(c, n) for n in negative]
        if strategy == "sum_scores":
            score = sum(to_positive) - sum(to_negative)
        else:
            best_p, best_n = max(to_positive), max(to_negative, default=-np.inf)
            score = sigmoid(best_p) if best_p > best_n else -sigmoid(best_n)
        scored.append((i, float(score)))
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))


def unit_of(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, np.float64)
    return array / np.linalg.norm(array)


@pytest.mark.parametrize("strategy", ["best_score", "sum_scores"])
def test_recommend_strategies_score_as_qdrant_does_on_a_named_cosine_vector(
    dev: QdrantClient, multi: str, strategy: str
) -> None:
    found = dev.query_points(
        multi,
        query=models.RecommendQuery(
            recommend=models.RecommendInput(positive=[1, text(2)], negative=[3], strategy=strategy)
        ),
        using="text",
        limit=6,
    ).points
    candidates = {i: unit_of(text(i)) for i in range(N) if i not in (1, 3)}
    expected = reference(
        strategy, candidates, [unit_of(text(1)), unit_of(text(2))], [unit_of(text(3))],
        lambda a, b: float(a @ b),
    )[:6]  # fmt: skip
    assert [p.id for p in found] == [i for i, _ in expected]
    assert [p.score for p in found] == pytest.approx([s for _, s in expected], abs=1e-5)


@pytest.mark.parametrize("strategy", ["best_score", "sum_scores"])
def test_recommend_strategies_on_dot_and_euclid_vectors(
    dev: QdrantClient, raw: httpx.Client, multi: str, strategy: str
) -> None:
    body = {"positive": [1, 2], "negative": [3], "strategy": strategy, "using": "image",
            "limit": 5, "with_vector": ["text"]}  # fmt: skip
    found = raw.post(f"/collections/{multi}/points/recommend", json=body).json()["result"]
    candidates = {i: np.asarray(image(i), np.float64) for i in range(N) if i not in (1, 2, 3, 5)}
    expected = reference(
        strategy, candidates, [candidates_of(image, 1), candidates_of(image, 2)],
        [candidates_of(image, 3)], lambda a, b: float(a @ b),
    )[:5]  # fmt: skip
    assert [p["id"] for p in found] == [i for i, _ in expected]  # 5 has no image: never found
    assert set(found[0]["vector"]) == {"text"}  # the vectors asked for, not the one searched
    name = f"euclid_{strategy}"
    dev.create_collection(
        name, vectors_config={"e": models.VectorParams(size=3, distance=models.Distance.EUCLID)}
    )
    points = {i: np.random.default_rng(i).normal(size=3) for i in range(20)}
    dev.upsert(
        name, [models.PointStruct(id=i, vector={"e": v.tolist()}) for i, v in points.items()]
    )
    by_strategy = dev.query_points(
        name,
        query=models.RecommendQuery(
            recommend=models.RecommendInput(positive=[0], negative=[1], strategy=strategy)
        ),
        using="e",
        limit=4,
    ).points
    expected = reference(
        strategy, {i: v for i, v in points.items() if i > 1}, [points[0]], [points[1]],
        lambda a, b: -float((a - b) @ (a - b)),  # Qdrant's Euclid similarity
    )[:4]  # fmt: skip
    assert [p.id for p in by_strategy] == [i for i, _ in expected]
    assert [p.score for p in by_strategy] == pytest.approx([s for _, s in expected], rel=1e-4)


def candidates_of(vector: Any, i: int) -> np.ndarray:
    return np.asarray(vector(i), np.float64)


# -- update_vectors / delete_vectors ----------------------------------------------------


def test_update_vectors_replaces_only_the_named_ones(dev: QdrantClient, multi: str) -> None:
    dev.update_vectors(
        multi, points=[models.PointVectors(id=11, vector={"image": image(12)})]
    )  # fmt: skip
    [point] = dev.retrieve(multi, ids=[11], with_vectors=True, with_payload=True)
    assert np.allclose(point.vector["image"], image(12), atol=1e-6)  # type: ignore[index]
    assert np.allclose(point.vector["text"], unit_of(text(11)), atol=1e-6)  # type: ignore[index]
    assert point.payload == {"n": 11, "group": 2}
    scores = {p.id: p.score for p in dev.query_points(multi, query=image(12), using="image",
                                                      limit=N).points}  # fmt: skip
    assert scores[11] == pytest.approx(scores[12])  # 11 holds 12's image now
    dev.update_vectors(multi, points=[models.PointVectors(id=11, vector={"image": image(11)})])
    with pytest.raises(UnexpectedResponse) as missing:
        dev.update_vectors(multi, [models.PointVectors(id=404, vector={"image": image(1)})])
    assert missing.value.status_code == 404
    refused(
        lambda: dev.update_vectors(multi, [models.PointVectors(id=11, vector={"audio": [1.0]})]),
        "audio",
    )


def test_delete_vectors_takes_a_named_vector_off_and_keeps_the_point(dev: QdrantClient) -> None:
    dev.create_collection(
        "trimmed",
        vectors_config={
            "a": models.VectorParams(size=2, distance=models.Distance.DOT),
            "b": models.VectorParams(size=2, distance=models.Distance.DOT),
        },
    )
    dev.upsert(
        "trimmed",
        [models.PointStruct(id=i, vector={"a": [1.0, i], "b": [i, 1.0]}, payload={"i": i})
         for i in range(4)],
    )  # fmt: skip
    dev.delete_vectors("trimmed", vectors=["b"], points=[1, 2])
    assert {p.id: sorted(p.vector) for p in dev.retrieve("trimmed", ids=[0, 1, 2, 3],  # type: ignore[arg-type]
                                                          with_vectors=True)} == {
        0: ["a", "b"], 1: ["a"], 2: ["a"], 3: ["a", "b"]
    }  # fmt: skip
    assert {p.id for p in dev.query_points("trimmed", query=[1.0, 1.0], using="b").points} == {0, 3}
    dev.delete_vectors(
        "trimmed",
        vectors=["a"],
        points=models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="i", match=models.MatchValue(value=3))]
            )
        ),
    )
    assert dev.retrieve("trimmed", ids=[3], with_vectors=True)[0].vector == {"b": [3.0, 1.0]}
    assert dev.count("trimmed").count == 4
    refused(lambda: dev.delete_vectors("trimmed", vectors=["c"], points=[1]), "c")
    refused(  # its last vector: a point with none could not be restored from a backup
        lambda: dev.delete_vectors("trimmed", vectors=["a"], points=[0, 1]),
        "would leave point 1 with no vector",
    )
    assert sorted(dev.retrieve("trimmed", ids=[0], with_vectors=True)[0].vector) == ["a", "b"]


def test_the_unnamed_vector_is_updated_but_never_deleted(dev: QdrantClient) -> None:
    dev.create_collection("single", vectors_config=models.VectorParams(size=2, distance="Dot"))
    dev.upsert("single", [models.PointStruct(id=1, vector=[1.0, 0.0], payload={"k": 1})])
    dev.update_vectors("single", [models.PointVectors(id=1, vector=[0.0, 2.0])])
    [point] = dev.retrieve("single", ids=[1], with_vectors=True, with_payload=True)
    assert point.vector == [0.0, 2.0]
    assert point.payload == {"k": 1}
    refused(lambda: dev.delete_vectors("single", vectors=[""], points=[1]), "delete the point")
