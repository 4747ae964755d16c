"""A client picks its own address with ``X-Forwarded-For`` (issue 11, 8).

uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 by default, so any local client (or a
proxy that passes the header through) chose the address that the per-address sign-in
throttle counts and the audit log records. Bastion believes forwarded headers only from
``BASTION_TRUSTED_PROXIES`` (empty by default). Driven through the real server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import func, select
from tests.support.server import Credentials, LiveServer, start_server

from bastion.audit import query
from bastion.authn.login import LoginThrottles
from bastion.storage.schema import login_failures

SPOOFED = "203.0.113.77"
PEER = "127.0.0.1"


def failed_sign_in(server: Credentials, url: str, username: str) -> httpx.Response:
    server.user(username=username)
    return httpx.post(
        f"{url}/auth/login",
        json={"username": username, "password": "not the password of this user"},
        headers={"X-Forwarded-For": SPOOFED, "X-Forwarded-Proto": "https"},
    )


def recorded_address(server: Credentials, username: str) -> str:
    """The address the audit log recorded for the failed sign-in of ``username``."""
    rt = server._runtime()
    try:
        with rt.db.read() as conn:
            page = query(conn, tenant_id=None, action="login.failure", limit=1000)
        (event,) = [e for e in page.events if e.details.get("username") == username]
        address: str = event.details["ip"]
        return address
    finally:
        rt.close()


def throttled_failures(server: Credentials, address: str) -> int:
    """Failures the per-address throttle counts against ``address``."""
    rt = server._runtime()
    try:
        key = LoginThrottles().by_address.key(rt.sealer, address)
        with rt.db.read() as conn:
            counted: int = conn.execute(
                select(func.count())
                .select_from(login_failures)
                .where(login_failures.c.scope == "address", login_failures.c.key_hash == key)
            ).scalar_one()
        return counted
    finally:
        rt.close()


def test_forwarded_for_from_an_untrusted_peer_is_ignored(live_server: LiveServer) -> None:
    before = throttled_failures(live_server, PEER)
    refused = failed_sign_in(live_server, live_server.url, "spoofer")
    assert refused.status_code == 401
    assert recorded_address(live_server, "spoofer") == PEER
    assert throttled_failures(live_server, PEER) == before + 1
    assert throttled_failures(live_server, SPOOFED) == 0
    # X-Forwarded-Proto is not believed either: plain HTTP gets no HSTS.
    assert "strict-transport-security" not in refused.headers


def test_forwarded_for_from_a_trusted_proxy_is_honoured(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", env={"BASTION_TRUSTED_PROXIES": PEER})
    try:
        proxied = Credentials(server.data_dir, server.env)
        refused = failed_sign_in(proxied, server.url, "behind-proxy")
        assert refused.status_code == 401
        assert recorded_address(proxied, "behind-proxy") == SPOOFED
        assert throttled_failures(proxied, SPOOFED) == 1
        assert throttled_failures(proxied, PEER) == 0
        assert refused.headers["strict-transport-security"].startswith("max-age=")
    finally:
        server.stop()
