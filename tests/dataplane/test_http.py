"""The real qdrant-client against a real Bastion (uvicorn on loopback)."""

from __future__ import annotations

import socket
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.support.server import LiveServer

pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
]
DIM = 32
N = 10_000


def bearer(server: LiveServer, **kwargs: Any) -> QdrantClient:
    token = server.token(**kwargs)
    return QdrantClient(
        url=server.url, auth_token_provider=lambda: token, timeout=60, check_compatibility=False
    )


def keyed(server: LiveServer, **kwargs: Any) -> QdrantClient:
    return QdrantClient(
        url=server.url, api_key=server.api_key(**kwargs), timeout=60, check_compatibility=False
    )


def cosine(name: str = "docs") -> dict[str, Any]:
    return {
        "collection_name": name,
        "vectors_config": models.VectorParams(size=DIM, distance=models.Distance.COSINE),
    }


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(11).normal(size=(N, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def dev(live_server: LiveServer) -> QdrantClient:
    return bearer(live_server, role="developer")


@pytest.fixture(scope="module")
def loaded(dev: QdrantClient, data: np.ndarray) -> QdrantClient:
    dev.create_collection(**cosine())
    for start in range(0, N, 1000):
        dev.upsert(
            "docs",
            points=[
                models.PointStruct(id=i, vector=data[i].tolist(), payload={"n": i, "odd": i % 2})
                for i in range(start, start + 1000)
            ],
            wait=True,
        )
    return dev


def test_ingest_count_and_info(loaded: QdrantClient) -> None:
    assert loaded.count("docs", exact=True).count == N
    info = loaded.get_collection("docs")
    assert info.points_count == N
    assert info.config.params.vectors.size == DIM
    assert loaded.collection_exists("docs")
    assert "docs" in [c.name for c in loaded.get_collections().collections]


def test_query_with_and_without_filter(loaded: QdrantClient, data: np.ndarray) -> None:
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    query = data[123]
    truth = np.argsort(-(normed @ (query / np.linalg.norm(query))))[:10].tolist()
    found = loaded.query_points("docs", query=query.tolist(), limit=10).points
    assert len(set(truth) & {p.id for p in found}) >= 9
    assert found[0].id == 123
    flt = models.Filter(
        must=[
            models.FieldCondition(key="odd", match=models.MatchValue(value=1)),
            models.FieldCondition(key="n", range=models.Range(lt=500)),
        ]
    )
    filtered = loaded.query_points(
        "docs", query=query.tolist(), query_filter=flt, limit=20, with_payload=True
    ).points
    assert len(filtered) == 20
    assert all(p.payload and p.payload["odd"] == 1 and p.payload["n"] < 500 for p in filtered)
    nearest = loaded.query_points(
        "docs", query=models.NearestQuery(nearest=query.tolist()), limit=1
    )
    assert nearest.points[0].id == 123


def test_scroll_through_everything(loaded: QdrantClient) -> None:
    seen: list[Any] = []
    offset = None
    while True:
        points, offset = loaded.scroll("docs", limit=1000, offset=offset, with_payload=False)
        seen += [p.id for p in points]
        if offset is None:
            break
    assert seen == list(range(N))


def test_delete_by_ids_and_filter(loaded: QdrantClient) -> None:
    loaded.delete("docs", points_selector=models.PointIdsList(points=[0, 1, 2]))
    loaded.delete(
        "docs",
        points_selector=models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="n", range=models.Range(gte=9990))]
            )
        ),
    )
    assert loaded.count("docs").count == N - 13
    assert loaded.retrieve("docs", ids=[1, 5]) == [
        models.Record(id=5, payload={"n": 5, "odd": 1}, vector=None)
    ]


def test_api_key_reads_and_viewer_cannot_write(
    loaded: QdrantClient, live_server: LiveServer
) -> None:
    viewer = keyed(live_server, role="viewer")
    assert viewer.count("docs").count > 0
    with pytest.raises(UnexpectedResponse) as caught:
        viewer.upsert("docs", points=[models.PointStruct(id=1, vector=[0.0] * DIM)])
    assert caught.value.status_code == 403


def test_step_up_challenge_reaches_the_client(live_server: LiveServer) -> None:
    weak = bearer(live_server, role="developer", acr="aal1")
    with pytest.raises(UnexpectedResponse) as caught:
        weak.create_collection(**cosine("weak"))
    assert caught.value.status_code == 401
    challenge = caught.value.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "acr_values=" in challenge


def test_other_tenant_collections_are_invisible(
    loaded: QdrantClient, live_server: LiveServer
) -> None:
    other = bearer(live_server, role="developer", tenant="other")
    assert "docs" not in [c.name for c in other.get_collections().collections]
    assert not other.collection_exists("docs")
    with pytest.raises(UnexpectedResponse) as caught:
        other.count("docs")
    assert caught.value.status_code == 404
    other.create_collection(**cosine())  # same name, own tenant
    assert other.count("docs").count == 0
    assert loaded.count("docs").count > 0


def test_collection_narrowed_service_account(live_server: LiveServer, dev: QdrantClient) -> None:
    dev.create_collection(**cosine("team-a-1"))
    narrowed = keyed(live_server, role="viewer", collections=["team-a-*"])
    assert [c.name for c in narrowed.get_collections().collections] == ["team-a-1"]
    with pytest.raises(UnexpectedResponse) as caught:
        narrowed.count("docs")
    assert caught.value.status_code == 403


def test_no_credentials_is_401(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/collections")
    assert response.status_code == 401
    assert "error" in response.json()["status"]


BAD_INPUTS = [
    ("PUT", "/collections/docs/points", {"points": [{"id": 1, "vector": [0.1] * (DIM - 1)}]}),
    ("PUT", "/collections/docs/points", {"points": [{"id": 1, "vector": [1e39] * DIM}]}),
    ("PUT", "/collections/docs/points", {"points": [{"id": -1, "vector": [0.1] * DIM}]}),
    ("PUT", "/collections/docs/points", {"points": [{"id": 1.5, "vector": [0.1] * DIM}]}),
    ("PUT", "/collections/docs/points", {"points": [{"id": "nope", "vector": [0.1] * DIM}]}),
    (
        "PUT",
        "/collections/docs/points",
        {"points": [{"id": 7, "vector": [0.1] * DIM}, {"id": 7, "vector": [0.2] * DIM}]},
    ),
    (
        "PUT",
        "/collections/docs/points",
        {"points": [{"id": 8, "vector": [0.1] * DIM, "payload": {"x": "y" * 70_000}}]},
    ),
    ("PUT", "/collections/nope/points", {"points": [{"id": 1, "vector": [0.1] * DIM}]}),
    ("POST", "/collections/docs/points/query", {"query": [0.1] * DIM, "limit": -1}),
    ("POST", "/collections/docs/points/query", {"query": [0.1] * DIM, "limit": 10**9}),
    ("POST", "/collections/docs/points/query", {"query": [0.1] * (DIM + 1)}),
    (
        "POST",
        "/collections/docs/points/query",
        {"query": [0.1] * DIM, "filter": {"must": [{"key": "n", "near": {"x": 1}}]}},
    ),
    ("POST", "/collections/docs/points/scroll", {"filter": {"must": "n"}}),
    ("POST", "/collections/docs/points/count", {"filter": {"must": [{"key": "n", "match": {}}]}}),
    ("PUT", "/collections/bad", {"vectors": {"size": 0, "distance": "Cosine"}}),
    ("PUT", "/collections/bad", {"vectors": {"size": 4, "distance": "Manhattan"}}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUTS)
def test_bad_input_is_4xx_in_qdrant_envelope(
    loaded: QdrantClient, live_server: LiveServer, method: str, path: str, body: Any
) -> None:
    token = live_server.token(role="developer")
    before = loaded.count("docs").count
    response = httpx.request(
        method, live_server.url + path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert isinstance(response.json()["status"]["error"], str)
    assert loaded.count("docs").count == before  # nothing half-written


def test_root_answers_the_client_version_check(live_server: LiveServer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        root = httpx.get(live_server.url + "/").json()
    assert root["version"].split(".")[:2] == ["1", "20"] or root["version"].startswith("1.")
    assert "title" in root


def test_concurrent_searches_over_http_match_one_at_a_time(
    dev: QdrantClient, live_server: LiveServer, data: np.ndarray
) -> None:
    """Eight clients at once are served by batched graph searches: same answers, and a
    write racing them never shows a point under another point's id."""
    dev.create_collection(
        **cosine("graph"), hnsw_config=models.HnswConfigDiff(full_scan_threshold=0)
    )
    first = 4_000
    dev.upsert(
        "graph",
        points=[models.PointStruct(id=i, vector=data[i].tolist()) for i in range(first)],
        wait=True,
    )
    queries = [data[i] for i in range(0, 800, 10)]

    def ask(client: QdrantClient, vector: np.ndarray) -> list[tuple[int, float]]:
        found = client.query_points("graph", query=vector.tolist(), limit=10).points
        return [(int(point.id), point.score) for point in found]

    alone = [ask(dev, vector) for vector in queries]
    clients = [bearer(live_server, role="viewer") for _ in range(8)]
    with ThreadPoolExecutor(len(clients) + 1) as pool:
        writer = pool.submit(  # new points while the searches run
            dev.upsert,
            "graph",
            points=[models.PointStruct(id=i, vector=data[i].tolist()) for i in range(first, N)],
            wait=True,
        )
        together = list(
            pool.map(lambda pair: ask(clients[pair[0] % len(clients)], pair[1]), enumerate(queries))
        )
        writer.result()
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    for index, (before, during) in enumerate(zip(alone, together, strict=True)):
        assert during[0][0] == before[0][0] == index * 10  # each query is a stored point
        for point, score in during:
            assert abs(float(normed[point] @ normed[index * 10]) - score) < 1e-4


def test_a_client_that_leaves_mid_body_is_not_a_server_error(
    live_server: LiveServer, loaded: QdrantClient
) -> None:
    before = loaded.count("docs", exact=True).count
    host, port = live_server.url.removeprefix("http://").split(":")
    token = live_server.token(role="viewer")
    head = (
        "POST /collections/docs/points/query HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + b'{"query": [')
        time.sleep(0.3)  # the server has started on it and waits for the rest
    time.sleep(0.3)
    log = live_server.server.log_path.read_text()
    assert "unhandled error" not in log
    assert "Exception in ASGI application" not in log
    assert loaded.count("docs", exact=True).count == before  # and it still serves
