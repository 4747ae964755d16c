"""The bench-only switch: no credential → served (bench principal); a credential is
still checked in full, so a bad or too weak one never gets through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.security.test_step_up import bearer, mint
from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings

BODY = {"vectors": {"size": 4, "distance": "Cosine"}}


@pytest.fixture
def bench_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("BASTION_I_UNDERSTAND_THIS_IS_INSECURE", "1")
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data",
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
        auth_disabled_for_benchmarks=True,
    )
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
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
