"""The served OpenAPI document describes every admin endpoint of API.md."""

from __future__ import annotations

from tests.support.app import Env

EXPECTED = {
    ("post", "/admin/tenants"),
    ("get", "/admin/tenants"),
    ("post", "/admin/users"),
    ("get", "/admin/users"),
    ("get", "/admin/users/{user_id}"),
    ("patch", "/admin/users/{user_id}"),
    ("delete", "/admin/users/{user_id}"),
    ("post", "/admin/users/{user_id}/reset-factors"),
    ("post", "/admin/service-accounts"),
    ("get", "/admin/service-accounts"),
    ("delete", "/admin/service-accounts/{account_id}"),
    ("post", "/admin/service-accounts/{account_id}/keys"),
    ("get", "/admin/service-accounts/{account_id}/keys"),
    ("delete", "/admin/service-accounts/{account_id}/keys/{key_id}"),
    ("post", "/admin/roles"),
    ("get", "/admin/roles"),
    ("delete", "/admin/roles/{name}"),
    ("get", "/admin/policy"),
    ("put", "/admin/policy"),
    ("get", "/admin/audit"),
    ("get", "/admin/audit/export"),
    ("get", "/admin/audit/verify"),
}


def test_openapi_lists_the_admin_api(env: Env) -> None:
    document = env.client.get("/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    served = {(method, path) for path, item in paths.items() for method in item}
    assert served >= EXPECTED, EXPECTED - served


DATA_PLANE = {
    ("get", "/collections"),
    ("get", "/collections/{name}"),
    ("put", "/collections/{name}"),
    ("delete", "/collections/{name}"),
    ("get", "/collections/{name}/exists"),
    ("put", "/collections/{name}/index"),
    ("put", "/collections/{name}/points"),
    ("post", "/collections/{name}/points"),
    ("post", "/collections/{name}/points/delete"),
    ("post", "/collections/{name}/points/scroll"),
    ("post", "/collections/{name}/points/count"),
    ("post", "/collections/{name}/points/search"),
    ("post", "/collections/{name}/points/query"),
    ("post", "/collections/{name}/export"),
}


def test_openapi_lists_the_data_plane_served_as_plain_routes(env: Env) -> None:
    paths = env.client.get("/openapi.json").json()["paths"]
    served = {(method, path) for path, item in paths.items() for method in item}
    assert served >= DATA_PLANE, DATA_PLANE - served
    query = paths["/collections/{name}/points/query"]["post"]
    assert query["tags"] == ["data plane (Qdrant subset)"]
    assert query["parameters"][0]["name"] == "name"
