"""The full sign-in story against a real uvicorn on loopback, spoken in plain HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp

from tests.support.server import ADMIN_PASSWORD, LiveServer, start_server


def wait_for_next_step() -> None:
    time.sleep(30.5 - time.time() % 30)


def test_bootstrap_admin_enrols_totp_and_reaches_aal2(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        login = {"username": "admin", "password": ADMIN_PASSWORD}
        first = http.post("/auth/login", json=login).json()
        assert first["status"] == "enrollment_required"
        restricted = {"Authorization": f"Bearer {first['access_token']}"}

        enrollment = http.post("/me/factors/totp", headers=restricted).json()
        assert enrollment["otpauth_uri"].startswith("otpauth://totp/")
        assert enrollment["qr_svg"].lstrip().startswith("<svg")
        totp = pyotp.TOTP(enrollment["secret"])
        activated = http.post(
            f"/me/factors/totp/{enrollment['factor_id']}/activate",
            headers=restricted,
            json={"code": totp.now()},
        )
        assert activated.status_code == 200, activated.text
        codes = http.post("/me/recovery-codes", headers=restricted).json()["codes"]
        assert len(codes) == 10

        wait_for_next_step()  # the activation code's time step is spent
        tx = http.post("/auth/login", json=login).json()
        assert tx["status"] == "mfa_required"
        tokens = http.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "totp", "code": totp.now()},
        ).json()
        assert tokens["status"] == "authenticated"
        assert tokens["acr"] == "aal2"
        me = http.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.json()["acr"] == "aal2"

        refreshed = http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 200
        new_access = refreshed.json()["access_token"]
        assert http.get("/me", headers={"Authorization": f"Bearer {new_access}"}).status_code == 200

        assert http.post("/auth/revoke", data={"token": new_access}).status_code == 200
        deadline = time.monotonic() + 1.0
        status = 200
        while time.monotonic() < deadline:
            status = http.get("/me", headers={"Authorization": f"Bearer {new_access}"}).status_code
            if status == 401:
                break
            time.sleep(0.05)
        assert status == 401


def test_jwks_and_openapi_are_served(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        assert http.get("/.well-known/jwks.json").json()["keys"][0]["alg"] == "EdDSA"
        assert "/auth/login" in http.get("/openapi.json").json()["paths"]
        assert http.get("/healthz").json() == {"status": "ok"}


def test_key_rotation_reaches_a_running_server(live_server: LiveServer) -> None:
    old_token = live_server.token(role="viewer", acr="aal2")
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        before = {key["kid"] for key in http.get("/.well-known/jwks.json").json()["keys"]}
        rotated = subprocess.run(
            [
                sys.executable,
                "-m",
                "bastion",
                "keys",
                "rotate",
                "--data-dir",
                str(live_server.data_dir),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **live_server.env},
            check=True,
        )
        assert "is active" in rotated.stdout
        deadline = time.monotonic() + 5
        after = before
        while time.monotonic() < deadline and after == before:
            time.sleep(0.2)
            after = {key["kid"] for key in http.get("/.well-known/jwks.json").json()["keys"]}
        assert before < after  # the old key stays published while its tokens live
        headers = {"Authorization": f"Bearer {old_token}"}
        assert http.get("/collections", headers=headers).status_code == 200


def test_the_log_reports_a_rotation_and_nothing_at_a_first_start(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", env={"BASTION_LOG_LEVEL": "info"})
    try:
        time.sleep(2.5)  # two housekeeping ticks after creating the first key
        assert "signing keys reloaded" not in server.log()
        subprocess.run(
            [sys.executable, "-m", "bastion", "keys", "rotate", "--data-dir", str(server.data_dir)],
            capture_output=True,
            env={**os.environ, **server.env},
            check=True,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "signing keys reloaded" not in server.log():
            time.sleep(0.2)
        assert server.log().count("signing keys reloaded: new key") == 1
    finally:
        server.stop()
