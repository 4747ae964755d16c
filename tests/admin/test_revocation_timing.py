"""On a real server: suspension, role removal and key revocation stop live credentials in < 1 s.

Each test warms the server's caches with a successful request first (so a stale
cached answer would be served if the change were not seen), makes the change
through the admin API, then polls every 50 ms and measures with ``time.monotonic``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.support.server import LiveServer

POLL = 0.05
LIMIT = 1.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seconds_until(check: Callable[[], int], expected: int, started: float) -> float:
    """Poll ``check`` until it returns ``expected``; the seconds since ``started``."""
    deadline = started + 5.0
    while time.monotonic() < deadline:
        if check() == expected:
            return time.monotonic() - started
        time.sleep(POLL)
    raise AssertionError(f"still not {expected} after 5 s")


def test_suspended_users_token_stops_within_one_second(live_server: LiveServer) -> None:
    admin = bearer(live_server.token(role="admin", acr="aal2"))
    victim = bearer(live_server.token(role="viewer", acr="aal2"))
    with httpx.Client(base_url=live_server.url, timeout=5.0) as client:
        me = client.get("/me", headers=victim)
        assert me.status_code == 200
        assert client.get("/collections", headers=victim).status_code == 200  # warm caches
        started = time.monotonic()
        changed = client.patch(
            f"/admin/users/{me.json()['id']}", headers=admin, json={"status": "suspended"}
        )
        assert changed.status_code == 200, changed.text
        elapsed = seconds_until(
            lambda: client.get("/collections", headers=victim).status_code, 401, started
        )
    assert elapsed < LIMIT, elapsed


def test_removed_role_stops_within_one_second(live_server: LiveServer) -> None:
    admin = bearer(live_server.token(role="admin", acr="aal2"))
    developer = bearer(live_server.token(role="developer", acr="aal2"))
    viewer = bearer(live_server.token(role="viewer", acr="aal2"))
    with httpx.Client(base_url=live_server.url, timeout=5.0) as client:
        made = client.put(
            "/collections/timing",
            headers=developer,
            json={"vectors": {"size": 4, "distance": "Cosine"}},
        )
        assert made.status_code == 200, made.text
        viewer_id = client.get("/me", headers=viewer).json()["id"]
        assert client.get("/collections/timing", headers=viewer).status_code == 200
        started = time.monotonic()
        changed = client.patch(f"/admin/users/{viewer_id}", headers=admin, json={"roles": []})
        assert changed.status_code == 200, changed.text
        elapsed = seconds_until(
            lambda: client.get("/collections/timing", headers=viewer).status_code, 403, started
        )
        assert client.get("/me", headers=viewer).status_code == 200  # still signed in, no rights
    assert elapsed < LIMIT, elapsed


def test_revoked_key_stops_within_one_second(live_server: LiveServer) -> None:
    admin = bearer(live_server.token(role="admin", acr="aal2"))
    with httpx.Client(base_url=live_server.url, timeout=5.0) as client:
        account = client.post(
            "/admin/service-accounts", headers=admin, json={"name": "timing", "roles": ["viewer"]}
        )
        assert account.status_code == 201, account.text
        account_id = account.json()["id"]
        key = client.post(f"/admin/service-accounts/{account_id}/keys", headers=admin, json={})
        assert key.status_code == 201, key.text
        api = {"api-key": key.json()["key"]}
        assert client.get("/collections", headers=api).status_code == 200
        started = time.monotonic()
        revoked = client.delete(
            f"/admin/service-accounts/{account_id}/keys/{key.json()['id']}", headers=admin
        )
        assert revoked.status_code == 204
        elapsed = seconds_until(
            lambda: client.get("/collections", headers=api).status_code, 401, started
        )
    assert elapsed < LIMIT, elapsed


def test_suspension_by_another_process_is_seen_within_one_second(
    live_server: LiveServer,
) -> None:
    """A change the server did not make itself (the CLI on the same data) is seen in < 1 s."""
    from bastion.identity.credentials import revoke_user_sessions
    from bastion.identity.users import find_user, set_status

    username = "timing-cli"
    victim = bearer(live_server.token(role="viewer", acr="aal2", username=username))
    with httpx.Client(base_url=live_server.url, timeout=5.0) as client:
        assert client.get("/collections", headers=victim).status_code == 200
        rt = live_server._runtime()
        try:
            started = time.monotonic()
            with rt.db.begin() as conn:
                user = find_user(conn, username)
                assert user is not None
                set_status(conn, user.id, "suspended", now=rt.clock.now())
                revoke_user_sessions(conn, user.id, reason="test", now=rt.clock.now())
        finally:
            rt.close()
        elapsed = seconds_until(
            lambda: client.get("/collections", headers=victim).status_code, 401, started
        )
    assert elapsed < LIMIT, elapsed
