"""First-admin bootstrap: the one-time setup link, and the env password."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings

PASSWORD = "lighthouse keeper marmalade 7"


def app_without_password(tmp_path: Path) -> TestClient:
    clock = ManualClock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    settings = load_settings(data_dir=tmp_path / "data", argon2_profile="test")
    return TestClient(create_app(settings, clock=clock), raise_server_exceptions=False)


def test_setup_link_creates_the_first_admin_once(tmp_path: Path) -> None:
    with app_without_password(tmp_path) as client:
        started = client.app.state.bootstrap  # type: ignore[attr-defined]
        assert started.kind == "link"
        token = started.setup_url.split("#", 1)[1]
        assert token.startswith("bst_setup_")
        page = client.get("/setup", follow_redirects=False)  # the link leads into the console
        assert page.status_code == 303
        assert page.headers["location"] == "/console/setup"  # the browser keeps the #fragment

        weak = client.post(
            "/setup", json={"token": token, "username": "root", "password": "password"}
        )
        assert weak.status_code == 422
        assert weak.json()["code"] == "weak_password"

        made = client.post(
            "/setup", json={"token": token, "username": "root", "password": PASSWORD}
        )
        assert made.status_code == 201, made.text
        login = client.post("/auth/login", json={"username": "root", "password": PASSWORD})
        assert login.json()["status"] == "enrollment_required"

        again = client.post(
            "/setup", json={"token": token, "username": "evil", "password": PASSWORD}
        )
        assert again.status_code == 401


def test_setup_link_rejects_forged_tokens(tmp_path: Path) -> None:
    with app_without_password(tmp_path) as client:
        for token in ("bst_setup_" + "A" * 43, "nope", ""):
            response = client.post("/setup", json={"token": token, "password": PASSWORD})
            assert response.status_code in {401, 422}
            assert "Traceback" not in response.text


def test_restart_with_users_prints_no_link(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data", argon2_profile="test", bootstrap_admin_password=PASSWORD
    )
    with TestClient(create_app(settings)) as client:
        assert client.app.state.bootstrap.kind == "password"  # type: ignore[attr-defined]
    with TestClient(create_app(settings)) as client:
        assert client.app.state.bootstrap.kind == "existing"  # type: ignore[attr-defined]
