"""Audit evasion (issue 11, items 3 and 4), against a real server on loopback.

- *By name*: a collection named like a secret (``bst_…``) or with a very long name used
  to be created, written, deleted (and its export refused) with a 500 and no audit
  event, because the event was built after the change had committed and the validator
  refused the name. Every such act must now answer as usual and leave its event, with
  the suspicious text redacted.
- *Write failure*: an event that cannot be written must fail the request before anything
  changes (the change and its event are one transaction).
- *Batch poisoning*: searches and throttled sign-ins are counted and written once a
  second; one bad entry used to discard the whole batch, so other callers' searches
  vanished from the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from tests.support.server import LiveServer, start_server

from bastion.audit import StoredEvent, query

SECRET_NAME = "bst_sk_" + "A" * 43  # the shape of a Bastion secret
LONG_NAME = "n" * 255  # the longest name a collection may have
VECTORS = {"vectors": {"size": 4, "distance": "Dot"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("evasion") / "data"
    running = start_server(data_dir)
    try:
        yield LiveServer(running)
    finally:
        running.stop()


def events(server: LiveServer, action: str) -> list[StoredEvent]:
    runtime = server._runtime()
    try:
        with runtime.db.read() as conn:
            return list(query(conn, tenant_id=None, action=action, limit=1000).events)
    finally:
        runtime.close()


def wait_for(server: LiveServer, action: str, found: object, seconds: float = 6) -> StoredEvent:
    """The first ``action`` event whose details or resource satisfy ``found``."""
    deadline = time.monotonic() + seconds
    while True:
        matching = [event for event in events(server, action) if found(event)]  # type: ignore[operator]
        if matching or time.monotonic() > deadline:
            assert matching, f"no {action} event matched"
            return matching[0]
        time.sleep(0.2)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("name", [SECRET_NAME, LONG_NAME], ids=["secret_like", "long"])
def test_audit_evasion_by_collection_name_is_recorded(server: LiveServer, name: str) -> None:
    developer = bearer(server.token(role="developer", acr="aal2"))
    viewer = bearer(server.token(role="viewer", acr="aal3"))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.put(f"/collections/{name}", headers=developer, json=VECTORS)
        assert created.status_code == 200, created.text
        point = {"id": 1, "vector": [1, 0, 0, 0], "payload": {"n": 1}}
        upserted = http.put(
            f"/collections/{name}/points?wait=true", headers=developer, json={"points": [point]}
        )
        assert upserted.status_code == 200, upserted.text
        deleted_points = http.post(
            f"/collections/{name}/points/delete", headers=developer, json={"points": [1]}
        )
        assert deleted_points.status_code == 200, deleted_points.text
        refused = http.post(f"/collections/{name}/export", headers=viewer)
        assert refused.status_code == 403, refused.text
        dropped = http.delete(f"/collections/{name}", headers=developer)
        assert dropped.status_code == 200, dropped.text

    def about_it(event: StoredEvent) -> bool:
        resource = event.resource or ""
        return resource.startswith("collection:") and (
            resource == f"collection:{name}" or "redacted" in resource
        )

    for action in ("collection.created", "points.upserted", "points.deleted", "authz.denied"):
        event = wait_for(server, action, about_it)
        assert "bst_" not in str(event.to_json()), event  # the secret-like text is not kept
    wait_for(server, "collection.deleted", about_it)


def test_audit_write_failure_changes_nothing(server: LiveServer) -> None:
    """A change whose event cannot be written does not happen."""
    developer = bearer(server.token(role="developer", acr="aal2"))
    runtime = server._runtime()
    try:
        with runtime.db.begin() as conn:
            conn.execute(
                text(
                    "CREATE TRIGGER audit_full BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'the audit log is full'); END"
                )
            )
        refused = httpx.put(f"{server.url}/collections/unaudited", headers=developer, json=VECTORS)
    finally:
        with runtime.db.begin() as conn:
            conn.execute(text("DROP TRIGGER audit_full"))
        runtime.close()
    assert refused.status_code == 500, refused.text
    assert "audit" not in refused.text  # no internal detail reaches the client
    exists = httpx.get(f"{server.url}/collections/unaudited/exists", headers=developer)
    assert exists.json()["result"] == {"exists": False}


def test_audit_batch_poisoning_by_a_secret_like_collection(server: LiveServer) -> None:
    """One caller's search of a strangely named collection cannot erase another's."""
    developer = bearer(server.token(role="developer", acr="aal2"))
    poisoner = bearer(server.token(role="viewer"))
    victim = bearer(server.token(role="viewer"))
    poisoned_name = SECRET_NAME[:-1] + "p"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for name in (poisoned_name, "innocent"):
            http.put(f"/collections/{name}", headers=developer, json=VECTORS)
            http.put(
                f"/collections/{name}/points?wait=true",
                headers=developer,
                json={"points": [{"id": 1, "vector": [1, 0, 0, 0]}]},
            )
        body = {"query": [1, 0, 0, 0], "limit": 1}
        # Poisoned searches first and last: every batch holding the victim's search holds
        # a poisoned one too, wherever the once-a-second flush falls.
        for turn in ("p", "v", "p", "v", "p", "v", "p"):
            name, headers = (poisoned_name, poisoner) if turn == "p" else ("innocent", victim)
            found = http.post(f"/collections/{name}/points/query", headers=headers, json=body)
            assert found.status_code == 200, found.text
    wait_for(
        server,
        "points.searched",
        lambda event: event.resource == "collection:innocent" and event.details["searches"] >= 1,
    )
    wait_for(server, "points.searched", lambda event: "redacted" in (event.resource or ""))


def test_audit_batch_poisoning_by_a_forged_address(server: LiveServer) -> None:
    """Throttled sign-ins are still recorded when another refused attempt of the same
    second carries a secret-like address (taken from a forwarded header)."""
    forged, plain = "bst_sk_" + "B" * 43, "203.0.113.7"

    def attempt(http: httpx.Client, address: str) -> int:
        return http.post(
            "/auth/login",
            headers={"X-Forwarded-For": address},
            json={"username": f"victim-{address[:3]}", "password": "wrong password 1"},
        ).status_code

    with httpx.Client(base_url=server.url, timeout=30) as http:
        for address in (forged, plain):
            for _ in range(10):  # the account's limit: the next attempt is throttled
                attempt(http, address)
        for address in (forged, plain, forged, plain, forged):
            assert attempt(http, address) == 429
    # Without a trusted proxy the server may ignore the header: then it records loopback.
    wait_for(
        server,
        "login.failure",
        lambda event: (
            event.reason == "rate_limited" and event.details.get("ip") in (plain, "127.0.0.1")
        ),
    )
