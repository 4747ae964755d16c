"""An anonymous caller probes /me and /admin with bodies to learn their shape (issue 11.17).

Before the fix FastAPI validated the body before the route authenticated, so an
anonymous ``POST /admin/users {}`` answered 422 naming ``username`` and ``roles``:
the API described itself to whoever asked. Every route that needs a credential now
authenticates first: 401, with nothing about the body.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.support.server import LiveServer

from bastion.app import create_app
from bastion.config import load_settings

# A body of the wrong shape, an empty object and a body that is not JSON at all.
PROBES = [b'{"probe": 1}', b"{}", b"{not json"]
FIELDS = ("username", "roles", "code", "current_password", "new_password", "status", "name")


def secured_operations(server: LiveServer) -> list[tuple[str, str]]:
    """Every documented operation under /me and /admin (each needs a credential)."""
    document = httpx.get(f"{server.url}/openapi.json").json()
    return [
        (method, path.replace("{", "").replace("}", ""))
        for path, item in document["paths"].items()
        for method in item
        if path.startswith(("/me", "/admin"))
    ]


def test_anonymous_body_probe_learns_nothing_about_the_body(live_server: LiveServer) -> None:
    operations = secured_operations(live_server)
    assert ("post", "/admin/users") in operations
    assert ("post", "/me/password") in operations
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        for method, path in operations:
            for probe in PROBES:
                headers = {"content-type": "application/json"}
                answer = http.request(method.upper(), path, headers=headers, content=probe)
                where = f"{method.upper()} {path} {probe}"
                assert answer.status_code == 401, (where, answer.text)
                assert answer.headers["content-type"] == "application/problem+json", where
                problem = answer.json()
                assert problem["code"] == "unauthenticated", (where, problem)
                assert "errors" not in problem, (where, problem)
                assert "field" not in problem, (where, problem)
                assert not any(field in problem["detail"] for field in FIELDS), (where, problem)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/users", {"username": 5}),
        ("PATCH", "/admin/users/u_1", {"status": "nope"}),
        ("POST", "/me/password", {"current_password": ""}),
        ("POST", "/me/factors/totp/f_1/activate", {"code": ""}),
    ],
)
def test_a_wrong_token_with_a_bad_body_is_refused_before_the_body_is_read(
    live_server: LiveServer, method: str, path: str, body: dict[str, object]
) -> None:
    answer = httpx.request(
        method,
        f"{live_server.url}{path}",
        json=body,
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert answer.status_code == 401, answer.text
    assert "errors" not in answer.json()


def test_anonymous_read_mode_does_not_open_the_body_of_admin_routes(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", argon2_profile="test", anonymous_read=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        probed = client.post("/admin/users", json={"username": 5})
        me = client.get("/me")
    assert probed.status_code == 401, probed.text
    assert "errors" not in probed.json()
    assert me.status_code == 401, me.text
