"""Attacks on the operations endpoints and the request id (issue 16)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from tests.observability.support import (
    LOOPBACK,
    REMOTE,
    TOKEN,
    client,
    observed_app,
    parsed,
    value,
)
from tests.support.server import ADMIN_PASSWORD, start_server

from bastion.audit import query

HEX_ID = re.compile(r"[0-9a-f]{16}")


def test_metrics_from_a_non_loopback_peer_is_404_as_if_absent(tmp_path: Path) -> None:
    app = observed_app(tmp_path)
    with client(app, REMOTE) as remote, client(app, LOOPBACK) as local:
        before = parsed(local.get("/metrics").text)
        refused = remote.get("/metrics")
        with_a_token = remote.get("/metrics", headers={"Authorization": "Bearer " + TOKEN})
        absent = remote.get("/metricz")  # a path the server does not have, of the same kind
        scraped = local.get("/metrics")
    assert refused.status_code == with_a_token.status_code == absent.status_code == 404
    assert refused.json() == with_a_token.json() == absent.json()
    assert refused.headers["content-type"] == absent.headers["content-type"]
    assert "bastion_" not in refused.text
    assert scraped.status_code == 200
    name, why = "bastion_metrics_scrapes_refused_total", {"reason": "not_loopback"}
    assert value(parsed(scraped.text), name, **why) - value(before, name, **why) == 2


def test_metrics_from_an_ipv4_mapped_loopback_peer_is_served(tmp_path: Path) -> None:
    with client(observed_app(tmp_path), ("::ffff:127.0.0.1", 40000)) as mapped:
        assert mapped.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "forged",
    [
        "abc\x01def",  # a control character
        "a" * 65,  # longer than 64
        "two words",
        "id;other=1",
        "ünïcode",
        "-leading-dash",
    ],
)
def test_request_id_header_injection_gets_a_fresh_id(tmp_path: Path, forged: str) -> None:
    with client(observed_app(tmp_path)) as http:
        answered = http.get("/healthz", headers={"X-Request-ID": forged.encode()})
    assert HEX_ID.fullmatch(answered.headers["x-request-id"])


@pytest.mark.parametrize(
    "secret_like",
    ["bst_sk_0123456789abcdef", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"],
)
def test_a_secret_sent_as_request_id_is_neither_echoed_nor_logged_nor_audited(
    tmp_path: Path, secret_like: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = observed_app(tmp_path, access_log=True)
    with caplog.at_level(logging.INFO), client(app) as http:
        refused = http.post(
            "/auth/login",
            json={"username": "admin", "password": "wrong " + ADMIN_PASSWORD},
            headers={"X-Request-ID": secret_like},
        )
    assert refused.status_code == 401  # not a 500 from an audit event refusing a secret
    assert HEX_ID.fullmatch(refused.headers["x-request-id"])
    assert secret_like not in caplog.text
    with app.state.runtime.db.read() as conn:
        [event] = query(conn, tenant_id=None, action="login.failure").events
    assert event.details["request_id"] == refused.headers["x-request-id"]


def test_collection_names_never_become_metric_series(tmp_path: Path) -> None:
    """An unbounded label would let any caller grow the server's memory and every
    scrape without limit, and would show tenants' collection names to the scraper."""
    with client(observed_app(tmp_path)) as http:
        before = series(http.get("/metrics").text)
        for number in range(200):
            http.post(f"/collections/tenant-data-{number}/points/search", json={})
            http.get(f"/collections/tenant-data-{number}/{number}")
        text = http.get("/metrics").text
    assert "tenant-data" not in text
    assert len(series(text) - before) <= 2  # the search route's 401, and "unmatched" 404


def series(text: str) -> set[str]:
    return {
        line.rsplit(" ", 1)[0]
        for line in text.splitlines()
        if line.startswith("bastion_http_requests_total")
    }


def test_metrics_through_a_trusted_local_proxy_are_refused_to_its_remote_clients(
    tmp_path: Path,
) -> None:
    """Behind a reverse proxy on the same host every connection comes from 127.0.0.1; with
    the proxy in BASTION_TRUSTED_PROXIES the client's own address counts, so a remote
    client does not reach /metrics through it (nor by writing 127.0.0.1 into the header a
    proxy appends to)."""
    server = start_server(tmp_path / "data", env={"BASTION_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        url = server.url + "/metrics"
        local = httpx.get(url, timeout=10)
        forwarded = httpx.get(url, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        appended = httpx.get(url, headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}, timeout=10)
    finally:
        server.stop()
    assert local.status_code == 200
    assert forwarded.status_code == appended.status_code == 404
