"""Stateless replicas (issue 17): separate ``bastion serve`` processes on one PostgreSQL
database, each with its own empty data folder, requests alternating between them.

Whatever one replica accepts or changes, the others see at once: data-plane writes,
spent TOTP steps, rotated refresh tokens, suspensions (≤ 1 s), signing-key rotations,
sign-in throttles, one audit chain; and a replica given another master key refuses to
start. Nothing on a replica's disk is needed: a third one on an empty folder serves it all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
import pytest

from bastion.audit import verify_chain
from bastion.identity.key_table import WRONG_MASTER_KEY
from bastion.storage import Database
from tests.support.replicas import Pair, new_master_key, replica, running, start_together
from tests.support.server import ADMIN_PASSWORD, ROOT, LiveServer, ServerProcess


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_write_through_a_is_read_through_b_at_once(pair: Pair) -> None:
    token = pair.a.token(role="developer")
    created = httpx.put(
        f"{pair.a.url}/collections/shared",
        headers=_bearer(token),
        json={"vectors": {"size": 3, "distance": "Cosine"}},
    )
    assert created.status_code == 200, created.text
    for number, server in zip(range(1, 21), pair.both(), strict=False):
        written = httpx.put(
            f"{server.url}/collections/shared/points?wait=true",
            headers=_bearer(token),
            json={"points": [{"id": number, "vector": [1.0, number, 0.0]}]},
        )
        assert written.status_code == 200, written.text
        other = pair.b if server is pair.a else pair.a
        read = httpx.post(
            f"{other.url}/collections/shared/points",
            headers=_bearer(token),
            json={"ids": [number]},
        )
        assert [point["id"] for point in read.json()["result"]] == [number]
    counted = httpx.post(
        f"{pair.b.url}/collections/shared/points/count", headers=_bearer(token), json={}
    )
    assert counted.json()["result"]["count"] == 20


def _enrolled(pair: Pair, username: str) -> pyotp.TOTP:
    """A user with a password and an active TOTP factor (enrolled through A)."""
    pair.a.user(role="viewer", username=username)
    login = {"username": username, "password": ADMIN_PASSWORD}
    restricted = httpx.post(f"{pair.a.url}/auth/login", json=login).json()["access_token"]
    enrollment = httpx.post(f"{pair.a.url}/me/factors/totp", headers=_bearer(restricted)).json()
    totp = pyotp.TOTP(enrollment["secret"])
    activated = httpx.post(
        f"{pair.b.url}/me/factors/totp/{enrollment['factor_id']}/activate",
        headers=_bearer(restricted),
        json={"code": totp.now()},
    )
    assert activated.status_code == 200, activated.text
    return totp


def _sign_in(server: LiveServer, username: str, code: str) -> httpx.Response:
    login = {"username": username, "password": ADMIN_PASSWORD}
    started = httpx.post(f"{server.url}/auth/login", json=login).json()
    return httpx.post(
        f"{server.url}/auth/login/{started['transaction_id']}/verify",
        json={"method": "totp", "code": code},
    )


def test_totp_code_used_on_a_is_refused_on_b(pair: Pair) -> None:
    totp = _enrolled(pair, "totp-replayer")
    code = totp.at(time.time() + 30)  # the next step: the activation spent this one
    assert _sign_in(pair.a, "totp-replayer", code).status_code == 200
    assert _sign_in(pair.b, "totp-replayer", code).status_code == 401


def test_refresh_token_rotated_on_a_is_dead_on_b(pair: Pair) -> None:
    totp = _enrolled(pair, "refresher")
    tokens = _sign_in(pair.a, "refresher", totp.at(time.time() + 30)).json()
    grant = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert httpx.post(f"{pair.a.url}/auth/token", json=grant).status_code == 200
    assert httpx.post(f"{pair.b.url}/auth/token", json=grant).status_code == 400


def test_user_suspended_through_a_is_refused_by_b_within_a_second(pair: Pair) -> None:
    admin = pair.a.token(role="admin", acr="aal3")
    victim = pair.a.token(role="viewer", username="soon-suspended")
    assert httpx.get(f"{pair.b.url}/collections", headers=_bearer(victim)).status_code == 200
    users = httpx.get(f"{pair.a.url}/admin/users", headers=_bearer(admin)).json()["users"]
    victim_id = next(user["id"] for user in users if user["username"] == "soon-suspended")
    suspended = httpx.patch(
        f"{pair.a.url}/admin/users/{victim_id}",
        headers=_bearer(admin),
        json={"status": "suspended"},
    )
    assert suspended.status_code == 200, suspended.text
    deadline = time.monotonic() + 1.0
    while True:
        status = httpx.get(f"{pair.b.url}/collections", headers=_bearer(victim)).status_code
        if status == 401:
            break
        assert time.monotonic() < deadline, "B still serves a user suspended through A"
        time.sleep(0.05)


def _cli(server: ServerProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", *arguments, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env},
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def test_key_rotation_on_a_verifies_on_b(pair: Pair) -> None:
    before = httpx.get(f"{pair.b.url}/.well-known/jwks.json").json()["keys"]
    rotated = _cli(pair.a.server, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    token = pair.a.token(role="viewer")  # signed with the new key
    deadline = time.monotonic() + 1.0
    while httpx.get(f"{pair.b.url}/collections", headers=_bearer(token)).status_code != 200:
        assert time.monotonic() < deadline, "B does not verify a token of the new key"
        time.sleep(0.05)
    after = httpx.get(f"{pair.b.url}/.well-known/jwks.json").json()["keys"]
    assert len(after) == len(before) + 1  # the retired key still verifies its tokens


def test_throttle_counts_attempts_across_both(pair: Pair) -> None:
    pair.a.user(role="viewer", username="guessed")
    wrong = {"username": "guessed", "password": "a wrong guess"}
    statuses = [
        httpx.post(f"{server.url}/auth/login", json=wrong).status_code
        for _, server in zip(range(11), pair.both(), strict=False)
    ]
    assert statuses[-1] == 429, statuses  # ten failures, wherever they landed


def test_concurrent_audit_appends_from_both_leave_one_chain(pair: Pair) -> None:
    token = pair.a.token(role="developer")
    created = httpx.put(
        f"{pair.b.url}/collections/audited",
        headers=_bearer(token),
        json={"vectors": {"size": 2, "distance": "Dot"}},
    )
    assert created.status_code == 200, created.text

    def write(number: int) -> int:
        server = pair.a if number % 2 else pair.b
        return httpx.put(
            f"{server.url}/collections/audited/points?wait=true",
            headers=_bearer(token),
            json={"points": [{"id": number, "vector": [1.0, float(number)]}]},
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(write, range(1, 81))) == {200}
    db = Database(pair.url)
    try:
        with db.read() as conn:
            report = verify_chain(conn)
    finally:
        db.dispose()
    assert report.ok, report.problem
    assert report.events > 80


def test_replica_with_another_master_key_refuses_to_start(pair: Pair) -> None:
    stranger = replica(pair.root, "stranger", pair.url, new_master_key())
    with pytest.raises(RuntimeError, match="exited early"):
        start_together([stranger], timeout=60)
    output = stranger.log()
    assert WRONG_MASTER_KEY in " ".join(output.split()), output
    assert "Traceback" not in output
    assert pair.master_key not in output


def test_third_replica_on_an_empty_folder_serves_everything(pair: Pair) -> None:
    token = pair.a.token(role="developer")
    created = httpx.put(
        f"{pair.a.url}/collections/before_c",
        headers=_bearer(token),
        json={"vectors": {"size": 2, "distance": "Euclid"}},
    )
    assert created.status_code == 200, created.text
    third = replica(pair.root, "c", pair.url, pair.master_key)
    with running([third]):
        assert not any((third.data_dir / "keys").glob("*"))  # nothing of its own on disk
        listed = httpx.get(f"{third.url}/collections", headers=_bearer(token))
        assert listed.status_code == 200, listed.text
        names = {item["name"] for item in listed.json()["result"]["collections"]}
        assert "before_c" in names
        jwks = {
            key["kid"] for key in httpx.get(f"{third.url}/.well-known/jwks.json").json()["keys"]
        }
        assert jwks == {
            key["kid"] for key in httpx.get(f"{pair.b.url}/.well-known/jwks.json").json()["keys"]
        }
