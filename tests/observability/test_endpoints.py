"""/metrics, /readyz and /healthz on the in-process app, and the settings that govern them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import PlainTextResponse
from starlette.routing import Mount

from bastion.api.observe import _template
from bastion.audit import query
from bastion.config import load_settings
from bastion.errors import ConfigurationError
from bastion.metrics import METRICS
from bastion.storage import Database
from tests.observability.support import (
    LOOPBACK,
    REMOTE,
    TOKEN,
    client,
    observed_app,
    parsed,
    value,
)

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql+psycopg://bastion@127.0.0.1:1/nowhere"  # port 1: refused at once


def test_a_scrape_lists_every_metric_of_the_catalog_in_prometheus_text(tmp_path: Path) -> None:
    with client(observed_app(tmp_path)) as http:
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert scraped.headers["cache-control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(scraped.text)}
    expected = {spec.name.removesuffix("_total") for spec in METRICS}
    missing = expected - names - {"bastion_audit_checkpoint_age_seconds"}  # no checkpoint yet
    assert missing == set()


def test_every_metric_is_documented() -> None:
    text = (ROOT / "docs" / "observability.md").read_text()
    assert [spec.name for spec in METRICS if f"`{spec.name}`" not in text] == []


def test_routes_are_counted_by_template_and_status_never_by_raw_path(tmp_path: Path) -> None:
    with client(observed_app(tmp_path)) as http:
        before = parsed(http.get("/metrics").text)
        http.post("/collections/Secret-Project-X/points/query", json={"query": [1.0]})
        http.get("/collections/Secret-Project-X/nothing-here")
        http.get("/tenant-data-in-the-path/1234")
        http.request("BREW", "/collections")
        http.delete("/admin/roles/Secret-Role")
        text = http.get("/metrics").text
    after = parsed(text)

    def added(**labels: str) -> float:
        name = "bastion_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert added(method="POST", route="/collections/{name}/points/query", status="401") == 1
    assert added(method="GET", route="unmatched", status="404") == 2
    assert added(method="other", route="/collections", status="405") == 1
    assert added(method="DELETE", route="/admin/roles/{name}", status="401") == 1
    for raw in ("Secret-Project-X", "nothing-here", "tenant-data", "BREW", "Secret-Role"):
        assert raw not in text


def test_a_mounted_app_is_counted_under_its_prefix() -> None:
    scope = {"path": "/console/static/app.js", "path_params": {"path": "static/app.js"}}
    assert _template(Mount("/console", app=PlainTextResponse("x")), scope) == "/console/{path}"


def test_a_failed_login_is_counted_and_its_audit_event_carries_the_request_id(
    tmp_path: Path,
) -> None:
    app = observed_app(tmp_path)
    with client(app) as http:
        before = parsed(http.get("/metrics").text)
        refused = http.post("/auth/login", json={"username": "admin", "password": "nope nope"})
        after = parsed(http.get("/metrics").text)
    assert refused.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{16}", refused.headers["x-request-id"])
    for name, labels in (
        ("bastion_logins_total", {"outcome": "failure"}),
        ("bastion_audit_events_total", {"action": "login.failure", "outcome": "failure"}),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) == 1
    with app.state.runtime.db.read() as conn:
        [event] = query(conn, tenant_id=None, action="login.failure").events
    assert event.details["request_id"] == refused.headers["x-request-id"]


def test_readyz_is_503_until_the_collections_are_loaded(tmp_path: Path) -> None:
    app = observed_app(tmp_path)
    not_started = TestClient(app, client=LOOPBACK)  # no lifespan: nothing loaded
    early = not_started.get("/readyz")
    assert early.status_code == 503
    assert early.json() == {"status": "unavailable", "collections": "loading", "database": "ok"}
    assert not_started.get("/healthz").status_code == 200
    with client(app) as http:
        ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_healthz_stays_alive_when_the_database_is_gone_and_readyz_says_so(
    tmp_path: Path,
) -> None:
    app = observed_app(tmp_path)
    with client(app) as http:
        runtime = app.state.runtime
        kept = runtime.db
        runtime.db = Database(UNREACHABLE)
        try:
            alive = http.get("/healthz")
            ready = http.get("/readyz")
        finally:
            runtime.db.dispose()
            runtime.db = kept
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "collections": "loaded",
        "database": "unavailable",
    }


def test_token_mode_serves_a_scraper_anywhere_with_the_token_and_nobody_without(
    tmp_path: Path,
) -> None:
    app = observed_app(tmp_path, metrics="token", metrics_token=TOKEN)
    authorized = {"Authorization": "Bearer " + TOKEN}
    with client(app, REMOTE) as remote, client(app, LOOPBACK) as local:
        before = parsed(remote.get("/metrics", headers=authorized).text)
        missing = remote.get("/metrics")
        wrong = remote.get("/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1] + "0"})
        basic = remote.get("/metrics", headers={"Authorization": "Basic " + TOKEN})
        huge = remote.get("/metrics", headers={"Authorization": "Bearer " + TOKEN * 40})
        unauthenticated_local = local.get("/metrics")
        allowed = remote.get("/metrics", headers=authorized)
    for refused in (missing, wrong, basic, huge, unauthenticated_local):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in refused.text
    assert allowed.status_code == 200
    found = parsed(allowed.text)
    for reason, count in (("missing_token", 3), ("wrong_token", 2)):
        name = "bastion_metrics_scrapes_refused_total"
        assert value(found, name, reason=reason) - value(before, name, reason=reason) == count


def test_metrics_off_is_404_even_on_loopback(tmp_path: Path) -> None:
    with client(observed_app(tmp_path, metrics="off")) as http:
        assert http.get("/metrics").status_code == 404


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"metrics": "token"}, "metrics_token go together"),
        ({"metrics_token": TOKEN}, "metrics_token go together"),
        ({"metrics": "token", "metrics_token": "too-short"}, "at least 32"),
        ({"metrics": "everyone"}, "BASTION_METRICS"),
        ({"log_format": "xml"}, "BASTION_LOG_FORMAT"),
    ],
)
def test_bad_observability_settings_stop_the_server(
    tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(data_dir=tmp_path, **settings)
