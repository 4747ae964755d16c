"""A real ``bastion serve --workers 2`` with JSON logs and the access log: /metrics adds up
both workers, /readyz answers, every log line is JSON with the request's id, and the
secrets of a whole session (password, TOTP, tokens, API key) appear in no line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bastion.audit import query
from tests.support.server import ADMIN_PASSWORD, LiveServer, open_runtime, start_server

WRONG = "not the password at all"
UPSERTS = 6
SEARCHES = 9


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("observed")
    env = {
        "BASTION_WORKERS": "2",
        "BASTION_LOG_FORMAT": "json",
        "BASTION_ACCESS_LOG": "true",
        "BASTION_LOG_LEVEL": "debug",
    }
    process = start_server(root / "data", env=env, stderr_path=root / "stderr.log")
    try:
        yield LiveServer(process)
    finally:
        process.stop()


def fresh(server: LiveServer) -> httpx.Client:
    """A client whose every request opens its own connection: the kernel spreads new
    connections over the workers, so the requests land on both."""
    return httpx.Client(base_url=server.url, timeout=10, headers={"Connection": "close"})


def samples(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Counters of the other worker arrive within a second (its publisher's period)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the metrics never showed the expected counts")
        time.sleep(0.2)


def previous_code(totp: pyotp.TOTP) -> str:
    """The previous time step's code (the sign-in that follows uses the current one, so it
    is not a replay), sent early enough in this step that the server still accepts it:
    5 s before a step ends, wait for the next (else, at load, the request would arrive two
    steps after its code and be refused as a mismatch)."""
    while time.time() % totp.interval > totp.interval - 5:
        time.sleep(0.2)
    return totp.at(time.time() - totp.interval)


def enrolled_login(http: httpx.Client) -> tuple[dict[str, Any], pyotp.TOTP]:
    """The bootstrap admin enrols TOTP (activated with the previous step's code), then
    signs in with password + the current code: a full successful login."""
    login = {"username": "admin", "password": ADMIN_PASSWORD}
    first = http.post("/auth/login", json=login).json()
    assert first["status"] == "enrollment_required", first
    restricted = {"Authorization": f"Bearer {first['access_token']}"}
    enrollment = http.post("/me/factors/totp", headers=restricted).json()
    totp = pyotp.TOTP(enrollment["secret"])
    activated = http.post(
        f"/me/factors/totp/{enrollment['factor_id']}/activate",
        headers=restricted,
        json={"code": previous_code(totp)},
    )
    assert activated.status_code == 200, activated.text
    tx = http.post("/auth/login", json=login).json()
    assert tx["status"] == "mfa_required", tx
    tokens = http.post(
        f"/auth/login/{tx['transaction_id']}/verify", json={"method": "totp", "code": totp.now()}
    ).json()
    assert tokens["status"] == "authenticated", tokens
    return tokens, totp


def test_metrics_add_up_logins_searches_and_upserts_of_both_workers(server: LiveServer) -> None:
    before = samples(server)
    victim = server.user(role="viewer")
    developer = {"Authorization": f"Bearer {server.token(role='developer', acr='aal2')}"}
    weak = {"Authorization": f"Bearer {server.token(role='developer', acr='aal1')}"}
    with fresh(server) as http:
        tokens, _ = enrolled_login(http)
        for _ in range(10):  # the account's limit: 10 failures in 15 minutes
            assert (
                http.post("/auth/login", json={"username": victim, "password": WRONG}).status_code
                == 401
            )
        for _ in range(3):
            throttled = http.post("/auth/login", json={"username": victim, "password": WRONG})
            assert throttled.status_code == 429
        create = {"vectors": {"size": 4, "distance": "Dot"}}
        assert http.put("/collections/seen", json=create, headers=developer).status_code == 200
        for i in range(UPSERTS):
            points = {"points": [{"id": i * 2 + j, "vector": [1.0, j, 0.5, i]} for j in range(2)]}
            put = http.put("/collections/seen/points?wait=true", json=points, headers=developer)
            assert put.status_code == 200, put.text
        for _ in range(SEARCHES):
            body = {"query": [1.0, 0.0, 0.0, 0.0], "limit": 3}
            assert (
                http.post(
                    "/collections/seen/points/query", json=body, headers=developer
                ).status_code
                == 200
            )
        challenged = http.put("/collections/seen/points", json={"points": []}, headers=weak)
        assert challenged.status_code == 401
        assert "insufficient_user_authentication" in challenged.headers["www-authenticate"]
    assert tokens["access_token"]

    def delta(name: str, **labels: str) -> float:
        return value(now, name, **labels) - value(before, name, **labels)

    def arrived() -> bool:
        nonlocal now
        now = samples(server)
        return (
            delta("bastion_logins_total", outcome="success") == 1
            and delta("bastion_logins_total", outcome="enrollment_required") == 1
            and delta("bastion_logins_total", outcome="failure") == 10
            and delta("bastion_logins_total", outcome="throttled") == 3
            and delta("bastion_throttled_attempts_total", scope="account") == 3
            and delta("bastion_searches_total", kind="query") == SEARCHES
            and delta("bastion_points_upserted_total") == 2 * UPSERTS
            and delta("bastion_step_up_challenges_total", required_acr="aal2") == 1
        )

    now = before
    eventually(arrived)
    query_route = {"method": "POST", "route": "/collections/{name}/points/query"}
    assert delta("bastion_http_requests_total", status="200", **query_route) == SEARCHES
    assert delta("bastion_http_request_duration_seconds_count", **query_route) == SEARCHES
    assert (
        delta("bastion_http_requests_total", method="POST", route="/auth/login", status="429") == 3
    )
    assert value(now, "bastion_metrics_workers") == 2
    assert value(now, "bastion_collections") >= 1
    assert value(now, "bastion_points") >= 2 * UPSERTS
    assert value(now, "bastion_audit_chain_length") > 0
    assert not any("seen" in str(labels) for _, labels in now)  # no collection names


def test_each_worker_served_part_of_the_requests(server: LiveServer) -> None:
    with fresh(server) as http:
        for _ in range(40):
            assert http.get("/healthz").status_code == 200
    folder = server.data_dir / "metrics"

    def both_served() -> bool:
        served = []
        for path in sorted(folder.glob("worker-*.json")):
            requests = json.loads(path.read_bytes())["requests"]
            served.append(sum(tally[0] for *_, tally in requests))
        return len(served) == 2 and all(count > 0 for count in served)

    eventually(both_served)
    assert folder.stat().st_mode & 0o777 == 0o700


def test_readyz_answers_once_collections_are_loaded(server: LiveServer) -> None:
    ready = httpx.get(server.url + "/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "collections": "loaded", "database": "ok"}
    assert httpx.get(server.url + "/healthz", timeout=10).json() == {"status": "ok"}


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line parses, or this fails


def test_json_log_lines_carry_the_request_id_of_the_response_and_the_audit_event(
    server: LiveServer, tmp_path: Path
) -> None:
    victim = server.user(role="viewer")
    with fresh(server) as http:
        refused = http.post("/auth/login", json={"username": victim, "password": WRONG})
        chosen = http.get("/healthz", headers={"X-Request-ID": "trace-4f2a.9"})
    assert refused.status_code == 401
    request_id = refused.headers["x-request-id"]
    assert chosen.headers["x-request-id"] == "trace-4f2a.9"
    stderr = server.data_dir.parent / "stderr.log"

    def logged() -> list[dict[str, Any]]:
        return [line for line in json_lines(stderr) if line.get("request_id") == request_id]

    eventually(lambda: bool(logged()), seconds=5)
    access = [line for line in logged() if line["logger"] == "bastion.access"]
    assert access[0]["route"] == "/auth/login"
    assert access[0]["status"] == 401
    assert {"time", "level", "message", "method", "duration_ms"} <= access[0].keys()
    rt = open_runtime(server.data_dir, server.env)
    try:
        with rt.db.read() as conn:
            events = query(conn, tenant_id=None, action="login.failure", newest_first=True).events
    finally:
        rt.close()
    assert [e.details.get("request_id") for e in events if e.actor].count(request_id) == 1
    assert "trace-4f2a.9" in {line.get("request_id") for line in json_lines(stderr)}


def test_no_secret_of_a_whole_session_reaches_the_logs(server: LiveServer) -> None:
    api_key = server.api_key(role="viewer")
    password = "a fresh password for the logs 9!"
    username = server.user(role="viewer", password=password)
    with fresh(server) as http:
        signed_in = http.post("/auth/login", json={"username": username, "password": password})
        restricted = signed_in.json()["access_token"]
        auth = {"Authorization": f"Bearer {restricted}"}
        enrollment = http.post("/me/factors/totp", headers=auth).json()
        seed = enrollment["secret"]
        code = previous_code(pyotp.TOTP(seed))
        activate = f"/me/factors/totp/{enrollment['factor_id']}/activate"
        assert http.post(activate, headers=auth, json={"code": code}).status_code == 200
        tx = http.post("/auth/login", json={"username": username, "password": password}).json()
        now_code = pyotp.TOTP(seed).now()
        verify = {"method": "totp", "code": now_code}
        tokens = http.post(f"/auth/login/{tx['transaction_id']}/verify", json=verify).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert http.get("/collections", headers=bearer).status_code == 200
        assert http.get("/collections", headers={"api-key": api_key}).status_code == 200
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        renewed = http.post("/auth/token", data=refresh).json()
        wrong_key = api_key[:-4] + "AAAA"
        assert http.get("/collections", headers={"api-key": wrong_key}).status_code == 401
    secrets = {
        "password": password,
        "restricted token": restricted,
        "TOTP seed": seed,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "renewed access token": renewed["access_token"],
        "renewed refresh token": renewed["refresh_token"],
        "API key": api_key,
        "wrong API key": wrong_key,
        "bootstrap password": ADMIN_PASSWORD,
    }
    time.sleep(1.5)  # the workers' last lines (and the audit flush) are written
    stderr = (server.data_dir.parent / "stderr.log").read_text()
    stdout = server.server.log()
    assert len(json_lines(server.data_dir.parent / "stderr.log")) > 20  # debug: plenty said
    leaked = [name for name, secret in secrets.items() if secret in stderr or secret in stdout]
    assert leaked == []
    for typed in (code, now_code):  # six digits occur in timestamps; a quoted code must not
        assert f'"{typed}"' not in stderr
