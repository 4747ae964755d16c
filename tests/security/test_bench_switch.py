"""The bench's own app (bench/app.py): no credential → served (bench principal); a
credential is still checked in full, so a bad or too weak one never gets through. And
nothing in Bastion itself turns authentication off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.app import create_bench_app
from fastapi.testclient import TestClient
from tests.security.test_step_up import bearer, mint
from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD

from bastion.clock import ManualClock
from bastion.config import load_settings
from bastion.errors import ConfigurationError

BODY = {"vectors": {"size": 4, "distance": "Cosine"}}


@pytest.fixture
def bench_env(tmp_path: Path) -> Iterator[Env]:
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data", argon2_profile="test", bootstrap_admin_password=ADMIN_PASSWORD
    )
    app = create_bench_app(settings, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(client=client, clock=clock, data_dir=settings.data_dir)


def test_without_credentials_the_bench_switch_serves_the_request(bench_env: Env) -> None:
    assert bench_env.client.put("/collections/bench", json=BODY).status_code == 200
    assert bench_env.client.get("/collections").json()["result"]["collections"] == [
        {"name": "bench"}
    ]


def test_with_the_bench_switch_a_forged_token_is_still_refused(bench_env: Env) -> None:
    refused = bench_env.client.get("/collections", headers=bearer("not.a.token"))
    assert refused.status_code == 401, refused.text


def test_with_the_bench_switch_a_viewer_token_still_cannot_write(bench_env: Env) -> None:
    assert bench_env.client.put("/collections/bench", json=BODY).status_code == 200
    viewer = mint(bench_env, role="viewer", acr="aal2", amr=["mfa", "otp", "pwd"])
    write = bench_env.client.put(
        "/collections/bench/points",
        headers=bearer(viewer),
        json={"points": [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}]},
    )
    assert write.status_code == 403, write.text


def test_without_the_switch_no_credential_means_401(env: Env) -> None:
    assert env.client.get("/collections").status_code == 401


def test_the_old_switch_in_the_environment_is_refused(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variables that used to turn authentication off are not settings any more: a
    server started with them refuses to start (only the bench's own app factory lets a
    request without credentials through)."""
    monkeypatch.setenv("BASTION_AUTH_DISABLED_FOR_BENCHMARKS", "true")
    monkeypatch.setenv("BASTION_I_UNDERSTAND_THIS_IS_INSECURE", "1")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(data_dir=env.data_dir.parent / "other", argon2_profile="test")
    assert "BASTION_AUTH_DISABLED_FOR_BENCHMARKS" in refused.value.detail
    assert "BASTION_I_UNDERSTAND_THIS_IS_INSECURE" in refused.value.detail
