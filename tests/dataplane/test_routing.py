"""Data-plane routing: exact matches go straight to their endpoint; everything else under
/collections gets the same 404 / 405 answers as the rest of the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response

from bastion.api import dataplane
from bastion.api.routing import RouteTable
from bastion.app import create_app
from bastion.config import load_settings
from tests.support.server import TEST_ENV, Credentials

ENV = {**TEST_ENV, "BASTION_PUBLIC_URL": "http://testserver"}


async def _endpoint(request: Request, name: str = "") -> Response:
    return Response(name)


def test_the_table_matches_method_and_path_shape_exactly() -> None:
    table = RouteTable()
    table.route("GET", "/collections", "list")(_endpoint)
    table.route("POST", "/collections/{name}/points/query", "query", aliased=False)(_endpoint)
    assert table.match("GET", "/collections") == (_endpoint, None)
    assert table.match("POST", "/collections/docs/points/query") == (_endpoint, "docs")
    assert table.match("POST", "/collections/a.b-c_d/points/query") == (_endpoint, "a.b-c_d")
    for method, path in [
        ("GET", "/collections/docs/points/query"),  # another method
        ("POST", "/collections//points/query"),  # no name
        ("POST", "/collections/docs/points/query/"),  # trailing slash
        ("POST", "/collections/docs/points"),  # shorter
        ("POST", "/collections/a/b/points/query"),  # a name with a slash in it
        ("GET", "/collections/"),
        ("GET", "/collectionsx"),
    ]:
        assert table.match(method, path) is None, (method, path)


def test_only_collection_paths_can_be_registered() -> None:
    table = RouteTable()
    with pytest.raises(ValueError, match="data-plane path"):
        table.route("GET", "/admin/users", "no")(_endpoint)
    for path in (
        "/collections/{name}/points/{id}",
        "/collections/{other}",
        "/collections/x/{name}",
        "/collections/{name}/{field:anything}/x",
        "/collections/{other}/index/{field:anything}",
    ):
        with pytest.raises(ValueError, match="data-plane path"):
            table.route("GET", path, "no")(_endpoint)


def test_every_data_plane_route_is_in_the_table_and_in_the_router() -> None:
    documented = {(item.method, item.path) for item in dataplane.table.documented}
    routed = {(method, route.path) for route in dataplane.table.routes for method in route.methods}
    assert documented <= routed
    for method, path in documented:
        if ":anything}" in path:  # a rest-of-the-path parameter: the router serves it
            continue
        assert dataplane.table.match(method, path.replace("{name}", "docs")) is not None


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    app = create_app(load_settings(data_dir=tmp_path))
    with TestClient(app, follow_redirects=False) as client:
        token = Credentials(tmp_path, ENV).token(role="admin", acr="aal3")
        client.headers["Authorization"] = f"Bearer {token}"
        created = client.put("/collections/a", json={"vectors": {"size": 2, "distance": "Dot"}})
        assert created.status_code == 200, created.text
        yield client


def test_what_the_table_does_not_match_is_answered_like_everywhere_else(
    client: TestClient,
) -> None:
    wrong_method = client.post("/collections/a")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"]["error"] == "Method Not Allowed"
    assert "GET" in wrong_method.headers["allow"]
    for path in ("/collections/a/nope", "/collections/a%2Fb/exists", "/collections//exists"):
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert "is no route of Bastion's data plane" in missing.json()["status"]["error"]
    slash = client.get("/collections/a/exists/")  # no redirect built from Host: a 404
    assert slash.status_code == 404
    assert "location" not in slash.headers
    assert client.head("/collections/a/exists").status_code == 200


def test_errors_raised_on_the_short_way_use_the_apps_handlers(client: TestClient) -> None:
    bad_json = client.post("/collections/a/points/query", content=b"{")
    assert bad_json.status_code == 400
    assert "not valid JSON" in bad_json.json()["status"]["error"]
    unknown = client.post("/collections/zzz/points/query", json={"query": [1, 0]})
    assert unknown.status_code == 404
    assert "zzz" in unknown.json()["status"]["error"]
    anonymous = client.get("/collections/a/exists", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
