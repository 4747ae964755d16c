"""A forged ``Host`` header turned into a redirect to the attacker's site (issue 11, 12).

Starlette answers a path with a stray trailing slash with a redirect built from the
request's ``Host``: ``Host: evil.example`` → ``Location: http://evil.example/…`` (cache
poisoning, or a link into a phishing site). Bastion answers such a path ``404`` and
builds no URL from ``Host``; qdrant-client, which sends the exact paths, keeps working.
"""

from __future__ import annotations

import httpx
import pytest
from qdrant_client import QdrantClient, models
from tests.support.server import LiveServer

SLASHED = [
    ("GET", "/collections/"),
    ("GET", "/collections/docs/"),
    ("POST", "/collections/docs/points/query/"),
    ("PUT", "/collections/docs/points/"),
    ("POST", "/auth/login/"),
    ("GET", "/me/"),
    ("GET", "/admin/users/"),
    ("GET", "/healthz/"),
    ("GET", "/.well-known/jwks.json/"),
]


@pytest.mark.parametrize(("method", "path"), SLASHED)
def test_host_header_redirect_to_attacker_site(
    live_server: LiveServer, method: str, path: str
) -> None:
    response = httpx.request(
        method,
        live_server.url + path,
        headers={"Host": "evil.example"},
        json={} if method in ("POST", "PUT") else None,
        follow_redirects=False,
    )
    assert "location" not in response.headers, response.headers.get("location")
    assert response.status_code == 404
    assert "evil.example" not in response.text


@pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection")
def test_qdrant_client_works_without_slash_redirects(live_server: LiveServer) -> None:
    token = live_server.token(role="developer")
    client = QdrantClient(
        url=live_server.url, auth_token_provider=lambda: token, check_compatibility=False
    )
    try:
        client.create_collection(
            "slashless", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
        )
        assert client.collection_exists("slashless")
        client.upsert("slashless", points=[models.PointStruct(id=1, vector=[1.0, 0.0])])
        found = client.query_points("slashless", query=[1.0, 0.0], limit=1).points
        assert [point.id for point in found] == [1]
        assert client.count("slashless").count == 1
        assert "slashless" in [c.name for c in client.get_collections().collections]
        client.delete_collection("slashless")
    finally:
        client.close()
