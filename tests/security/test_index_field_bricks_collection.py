"""A payload-index field name that bricks a collection (issue 11, item 6), against a real
server on both engines.

``PUT /collections/docs/index`` accepted any ``field_name`` (newlines, NUL, ANSI escapes,
names no filter can reach); afterwards ``GET /collections/docs`` answered 400 for
everyone, and no route could delete an index. Now a field name must be a valid filter key
free of control characters (400 otherwise), an index already stored under a bad name no
longer breaks the collection's info, and ``DELETE /collections/{name}/index/{field_name}``
(Qdrant's route) drops any index, audited as ``index.deleted``.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import insert, select
from tests.security.conftest import DataPlane, qdrant_error
from tests.support.postgres import fresh_database
from tests.support.server import LiveServer, start_server

from bastion.vectors.schema import collections, payload_indexes

BAD_NAMES = [
    "line\nbreak",
    "nul\x00",
    "\x1b[31mred",
    "bidi\u202etxt",
    "zero\u200bwidth",
    "a..b",
    ".",
    "a[x]",
    "x" * 513,
]


@pytest.mark.parametrize("field", BAD_NAMES, ids=range(len(BAD_NAMES)))
def test_index_field_name_that_would_brick_the_collection_is_refused(
    dataplane: DataPlane, field: str
) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http)
        index = {"field_name": field, "field_schema": "keyword"}
        qdrant_error(http.put(f"/collections/{name}/index", json=index))
        info = http.get(f"/collections/{name}")
        assert info.status_code == 200, info.text
        assert info.json()["result"]["payload_schema"] == {}


def test_delete_payload_index_is_qdrants_route_and_audited(dataplane: DataPlane) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http)
        points = {"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": {"city": "Oslo"}}]}
        assert http.put(f"/collections/{name}/points", json=points).status_code == 200
        for field in ("city", "meta.tags[]"):
            index = {"field_name": field, "field_schema": "keyword"}
            assert http.put(f"/collections/{name}/index", json=index).status_code == 200
        schema = http.get(f"/collections/{name}").json()["result"]["payload_schema"]
        assert set(schema) == {"city", "meta.tags[]"}

        dropped = http.delete(f"/collections/{name}/index/{quote('meta.tags[]')}")
        assert dropped.status_code == 200, dropped.text
        assert dropped.json()["result"]["status"] == "completed"
        schema = http.get(f"/collections/{name}").json()["result"]["payload_schema"]
        assert set(schema) == {"city"}
        # the filter still answers, now without the index
        match = {"filter": {"must": [{"key": "city", "match": {"value": "Oslo"}}]}}
        assert http.delete(f"/collections/{name}/index/city").status_code == 200
        found = http.post(f"/collections/{name}/points/count", json=match)
        assert found.json()["result"]["count"] == 1
        # deleting what is not there is not an error (as Qdrant), and not an event
        assert http.delete(f"/collections/{name}/index/city").status_code == 200
        missing = http.delete("/collections/no_such_collection/index/city")
        assert missing.status_code == 404

    events = [e for e in dataplane.events("index.deleted") if e.details["collection"] == name]
    assert sorted(e.details["field"] for e in events) == ["city", "meta.tags[]"]
    assert all(e.actor and e.outcome == "success" for e in events)


def test_delete_payload_index_needs_index_permission(dataplane: DataPlane) -> None:
    with dataplane.client() as http:
        name = dataplane.collection(http)
        index = {"field_name": "city", "field_schema": "keyword"}
        assert http.put(f"/collections/{name}/index", json=index).status_code == 200
    viewer = {"Authorization": f"Bearer {dataplane.live.token(role='viewer', acr='aal3')}"}
    refused = httpx.delete(f"{dataplane.url}/collections/{name}/index/city", headers=viewer)
    assert refused.status_code == 403, refused.text
    anonymous = httpx.delete(f"{dataplane.url}/collections/{name}/index/city")
    assert anonymous.status_code == 401


@pytest.fixture(params=["embedded", "pgvector"])
def restartable(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    env: dict[str, str] = {}
    if request.param == "pgvector":
        env["BASTION_DATABASE_URL"] = fresh_database(request.getfixturevalue("pgvector_url"))
    server = start_server(tmp_path_factory.mktemp("bricked") / "data", env=env)
    try:
        yield LiveServer(server)
    finally:
        server.stop()


def test_collection_bricked_before_the_check_can_be_read_and_repaired(
    restartable: LiveServer,
) -> None:
    """An index stored under a bad name by an older version: the collection's info
    answers again, and the index can be deleted by its (URL-encoded) name."""
    admin = {"Authorization": f"Bearer {restartable.token(role='admin', acr='aal3')}"}
    bad = "evil\n\x1b[2Jname"
    with httpx.Client(base_url=restartable.url, headers=admin, timeout=30) as http:
        made = http.put("/collections/docs", json={"vectors": {"size": 4, "distance": "Dot"}})
        assert made.status_code == 200
    runtime = restartable._runtime()
    try:
        with runtime.db.begin() as conn:
            collection_id = conn.execute(
                select(collections.c.id).where(collections.c.name == "docs")
            ).scalar_one()
            conn.execute(
                insert(payload_indexes).values(
                    collection_id=collection_id, field=bad, schema="keyword"
                )
            )
    finally:
        runtime.close()
    restartable.server.stop()  # the embedded engine reads its indexes on start
    restartable.server.start()
    with httpx.Client(base_url=restartable.url, headers=admin, timeout=30) as http:
        info = http.get("/collections/docs")
        assert info.status_code == 200, info.text
        assert info.json()["result"]["payload_schema"] == {
            bad: {"data_type": "keyword", "points": 0}
        }
        dropped = http.delete(f"/collections/docs/index/{quote(bad, safe='')}")
        assert dropped.status_code == 200, dropped.text
        assert http.get("/collections/docs").json()["result"]["payload_schema"] == {}
