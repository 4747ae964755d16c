"""The real ASGI app in-process with real SQLite and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings
from tests.support.server import ADMIN_PASSWORD


@dataclass
class Env:
    client: TestClient
    clock: ManualClock
    data_dir: Path

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
        return self.client.post("/auth/login", json={"username": username, "password": password})

    def totp_now(self, secret: str) -> str:
        return pyotp.TOTP(secret).at(self.clock.now())

    def next_step(self) -> None:
        self.clock.advance(30)

    def enrolled_admin(self) -> tuple[str, list[str]]:
        """Sign in as the bootstrap admin, enrol TOTP, make recovery codes."""
        restricted = self.login().json()["access_token"]
        auth = {"Authorization": f"Bearer {restricted}"}
        enrollment = self.client.post("/me/factors/totp", headers=auth).json()
        secret = enrollment["secret"]
        activated = self.client.post(
            f"/me/factors/totp/{enrollment['factor_id']}/activate",
            headers=auth,
            json={"code": self.totp_now(secret)},
        )
        assert activated.status_code == 200, activated.text
        made = self.client.post("/me/recovery-codes", headers=auth)
        assert made.status_code == 200, made.text
        codes = made.json()["codes"]
        self.next_step()
        return secret, codes

    def full_login(self, secret: str) -> dict[str, Any]:
        tx = self.login().json()
        assert tx["status"] == "mfa_required", tx
        verified = self.client.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "totp", "code": self.totp_now(secret)},
        )
        assert verified.status_code == 200, verified.text
        self.next_step()
        body: dict[str, Any] = verified.json()
        return body


def app_env(tmp_path: Path) -> Iterator[Env]:
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data",
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
    )
    app = create_app(settings, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(client=client, clock=clock, data_dir=settings.data_dir)
