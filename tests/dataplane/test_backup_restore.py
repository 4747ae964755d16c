"""Backup and restore on the real server (docs/backup.md): a round trip keeps ids (integers
and UUIDs), payloads, payload indexes and search results; a file cut short, edited by
hand or holding a vector of the wrong size is refused and leaves nothing behind; who may
do either, and the RFC 9470 challenge of a stale token."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings
from tests.admin.helpers import mint
from tests.dataplane.test_export_and_audit import wait_for
from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD, LiveServer

SOURCE = "kb"
UUID = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> httpx.Client:
    headers = bearer(live_server.token(role="admin", acr="aal3"))
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def source(admin: httpx.Client) -> str:
    """A collection with integer and UUID ids, payloads, two payload indexes, an alias."""
    made = admin.put(
        f"/collections/{SOURCE}",
        json={"vectors": {"size": 4, "distance": "Cosine"}, "hnsw_config": {"m": 8}},
    )
    assert made.is_success, made.text
    points: list[dict[str, Any]] = [
        {"id": i, "vector": [i, 1, (i % 3) - 1, 0.5], "payload": {"n": i, "tag": f"t{i % 4}"}}
        for i in range(1, 2501)
    ]
    points.append({"id": UUID, "vector": [0, 0, 1, 1], "payload": {"nested": {"a": [1, 2]}}})
    for start in range(0, len(points), 1000):
        stored = admin.put(
            f"/collections/{SOURCE}/points?wait=true", json={"points": points[start : start + 1000]}
        )
        assert stored.is_success, stored.text
    for field, schema in (("tag", "keyword"), ("n", "integer")):
        indexed = admin.put(
            f"/collections/{SOURCE}/index", json={"field_name": field, "field_schema": schema}
        )
        assert indexed.is_success, indexed.text
    alias = {"actions": [{"create_alias": {"collection_name": SOURCE, "alias_name": "kb-live"}}]}
    assert admin.post("/collections/aliases", json=alias).is_success
    return SOURCE


@pytest.fixture(scope="module")
def backup(admin: httpx.Client, source: str) -> bytes:
    answer = admin.get(f"/collections/{source}/backup")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return answer.content


def lines_of(file: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in file.splitlines()]


def resealed(lines: list[dict[str, Any]]) -> bytes:
    """A file with a trailer that matches its (changed) lines: a hand-made file."""
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines[:-1])
    count = len(lines) - 2
    trailer = {"trailer": {"points": count, "sha256": hashlib.sha256(body).hexdigest()}}
    return body + orjson.dumps(trailer) + b"\n"


def restore(client: httpx.Client, name: str, file: bytes) -> httpx.Response:
    return client.post(
        f"/collections/{name}/restore",
        content=file,
        headers={"content-type": "application/x-ndjson"},
    )


def exists(client: httpx.Client, name: str) -> bool:
    return bool(client.get(f"/collections/{name}/exists").json()["result"]["exists"])


def all_points(client: httpx.Client, name: str) -> dict[Any, dict[str, Any]]:
    found: dict[Any, dict[str, Any]] = {}
    offset: Any = None
    while True:
        body = {"limit": 1000, "with_payload": True, "with_vector": True, "offset": offset}
        page = client.post(f"/collections/{name}/points/scroll", json=body).json()["result"]
        found.update({point["id"]: point for point in page["points"]})
        offset = page["next_page_offset"]
        if offset is None:
            return found


def test_the_file_is_a_header_the_points_and_a_checksummed_trailer(
    live_server: LiveServer, backup: bytes
) -> None:
    lines = lines_of(backup)
    header, trailer = lines[0], lines[-1]
    assert header["format"] == "bastion-backup"
    assert header["version"] == 1
    assert header["collection"] == SOURCE
    assert header["config"]["vectors"] == {"size": 4, "distance": "Cosine"}
    assert header["config"]["hnsw_config"]["m"] == 8
    assert header["payload_indexes"] == {"tag": "keyword", "n": "integer"}
    assert header["aliases"] == ["kb-live"]
    assert header["points"] == 2501
    assert trailer["trailer"]["points"] == 2501 == len(lines) - 2
    body = backup[: backup.rindex(b"\n", 0, len(backup) - 1) + 1]
    assert trailer["trailer"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert {"id", "payload", "vector"} == set(lines[1])  # the export's line
    audited = wait_for(live_server, "collection.backed_up", 1)[-1]
    assert audited.details["sha256"] == trailer["trailer"]["sha256"]
    assert audited.details["count"] == 2501
    assert audited.details["complete"] is True


def test_restore_round_trip_keeps_points_indexes_and_search_results(
    live_server: LiveServer, admin: httpx.Client, source: str, backup: bytes
) -> None:
    developer = httpx.Client(
        base_url=live_server.url, headers=bearer(live_server.token(role="developer")), timeout=60
    )
    with developer:
        restored = restore(developer, "kb-copy", backup)
        assert restored.status_code == 200, restored.text
        result = restored.json()["result"]
        assert result["points"] == 2501
        assert result["source"] == SOURCE
        assert result["aliases"] == ["kb-live"]  # reported, not moved
        assert all_points(developer, "kb-copy") == all_points(developer, source)
        assert all_points(developer, "kb-copy")[UUID]["payload"] == {"nested": {"a": [1, 2]}}
        info = developer.get("/collections/kb-copy").json()["result"]
        assert {k: v["data_type"] for k, v in info["payload_schema"].items()} == {
            "tag": "keyword",
            "n": "integer",
        }
        assert info["config"]["hnsw_config"]["m"] == 8
        query = {
            "query": [3, 1, -1, 0.5],
            "limit": 10,
            "filter": {"must": [{"key": "tag", "match": {"value": "t1"}}]},
        }
        original = developer.post(f"/collections/{source}/points/query", json=query).json()
        copied = developer.post("/collections/kb-copy/points/query", json=query).json()
        assert original["result"] == copied["result"]
        aliases = developer.get("/collections/kb-copy/aliases").json()["result"]["aliases"]
        assert aliases == []
    audited = wait_for(live_server, "collection.restored", 1)
    success = [event for event in audited if event.outcome == "success"][-1]
    assert success.details["source"] == SOURCE
    assert success.details["count"] == 2501
    assert success.details["sha256"] == lines_of(backup)[-1]["trailer"]["sha256"]


def test_restore_onto_an_existing_name_is_a_409(admin: httpx.Client, backup: bytes) -> None:
    assert restore(admin, SOURCE, backup).status_code == 409
    assert restore(admin, "kb-live", backup).status_code == 409  # an alias's name


def test_a_truncated_backup_is_refused_and_nothing_is_created(
    live_server: LiveServer, admin: httpx.Client, backup: bytes
) -> None:
    cut = backup[: len(backup) // 2]
    refused = restore(admin, "kb-cut", cut)
    assert refused.status_code == 400
    assert "cut short" in refused.json()["status"]["error"]
    assert not exists(admin, "kb-cut")
    at_a_line = backup[: backup.index(b"\n", len(backup) // 2) + 1]  # whole lines, no trailer
    refused = restore(admin, "kb-cut", at_a_line)
    assert refused.status_code == 400
    assert "without its trailer" in refused.json()["status"]["error"]
    assert not exists(admin, "kb-cut")
    failures = [e for e in wait_for(live_server, "collection.restored", 1) if e.reason]
    assert any(e.reason == "truncated" and e.details["collection"] == "kb-cut" for e in failures)


def test_a_tampered_line_is_refused_and_nothing_is_created(
    admin: httpx.Client, backup: bytes
) -> None:
    lines = backup.split(b"\n")
    edited = orjson.loads(lines[5])
    edited["payload"] = {"n": -1, "tag": "forged"}
    lines[5] = orjson.dumps(edited)
    refused = restore(admin, "kb-forged", b"\n".join(lines))
    assert refused.status_code == 400
    assert "does not match its trailer" in refused.json()["status"]["error"]
    assert not exists(admin, "kb-forged")


def test_a_vector_of_the_wrong_size_leaves_nothing_behind(
    live_server: LiveServer, admin: httpx.Client, backup: bytes
) -> None:
    lines = lines_of(backup)
    lines[2100]["vector"] = [1.0, 2.0, 3.0]  # in the third batch: two are stored by then
    refused = restore(admin, "kb-bad", resealed(lines))
    assert refused.status_code == 400, refused.text
    error = refused.json()["status"]["error"]
    assert "wrong vector dimension" in error
    assert "lines 2002-2502" in error
    assert not exists(admin, "kb-bad")
    listed = admin.get("/collections").json()["result"]["collections"]
    assert "kb-bad" not in [c["name"] for c in listed]
    failures = [e for e in wait_for(live_server, "collection.restored", 1) if e.reason]
    assert any(e.reason == "bad_point" and e.details["collection"] == "kb-bad" for e in failures)


def test_a_bad_line_and_a_plain_export_are_refused(admin: httpx.Client, backup: bytes) -> None:
    lines = backup.split(b"\n")
    lines[3] = b"{not json"
    refused = restore(admin, "kb-junk", b"\n".join(lines))
    assert refused.status_code == 400
    assert "line 4 is not JSON" in refused.json()["status"]["error"]
    exported = admin.post(f"/collections/{SOURCE}/export").content
    plain = restore(admin, "kb-plain", exported)
    assert plain.status_code == 400
    assert "header" in plain.json()["status"]["error"]
    assert not exists(admin, "kb-junk")
    assert not exists(admin, "kb-plain")


def test_who_may_back_up_and_restore(live_server: LiveServer, source: str, backup: bytes) -> None:
    url = live_server.url
    developer = bearer(live_server.token(role="developer", acr="aal3"))
    assert httpx.get(f"{url}/collections/{source}/backup", headers=developer).status_code == 403
    viewer = httpx.Client(base_url=url, headers=bearer(live_server.token(role="viewer")))
    with viewer:
        assert restore(viewer, "kb-viewer", backup).status_code == 403


def test_a_stale_aal2_token_gets_the_step_up_challenge(
    live_server: LiveServer, source: str
) -> None:
    admin_aal2 = bearer(live_server.token(role="admin", acr="aal2"))
    challenged = httpx.get(f"{live_server.url}/collections/{source}/backup", headers=admin_aal2)
    assert challenged.status_code == 401
    challenge = challenged.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="aal3"' in challenge


def test_a_backup_of_a_missing_collection_is_a_404(admin: httpx.Client) -> None:
    assert admin.get("/collections/nothing-here/backup").status_code == 404


def test_an_alias_backs_up_its_collection(admin: httpx.Client, source: str) -> None:
    header = orjson.loads(admin.get("/collections/kb-live/backup").content.split(b"\n")[0])
    assert header["collection"] == source


@pytest.mark.parametrize(
    "path", ["/collections/kb/snapshots", "/collections/kb/snapshots/upload", "/snapshots"]
)
def test_qdrant_snapshot_routes_point_to_the_backup(admin: httpx.Client, path: str) -> None:
    answer = admin.post(path)
    assert answer.status_code == 501
    error = answer.json()["status"]["error"]
    assert "GET /collections/{name}/backup" in error
    assert "bastion backup" in error


def test_a_backup_larger_than_the_restore_limit_is_a_413(tmp_path: Path) -> None:
    """The request body limit does not apply to a restore; ``max_restore_bytes`` does,
    declared (refused before a byte is read) or streamed (refused once it is passed)."""
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC))
    settings = load_settings(data_dir=tmp_path / "data", argon2_profile="test",
                             bootstrap_admin_password=ADMIN_PASSWORD, max_body_bytes=1024,
                             max_restore_bytes=4096)  # fmt: skip
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        env = Env(client=client, clock=clock, data_dir=settings.data_dir)
        admin = mint(env, acr="aal3").auth
        made = {"vectors": {"size": 2, "distance": "Dot"}}
        assert client.put("/collections/small", headers=admin, json=made).status_code == 200
        for start in range(0, 30, 10):  # each upsert under the body limit
            points = [
                {"id": i, "vector": [i, 1], "payload": {"i": i}} for i in range(start, start + 10)
            ]
            upserted = client.put(
                "/collections/small/points", headers=admin, json={"points": points}
            )
            assert upserted.status_code == 200, upserted.text
        file = client.get("/collections/small/backup", headers=admin).content
        assert 1024 < len(file) < 4096  # over the body limit, under the restore limit
        assert restore(client, "copy", file).status_code == 401  # no credential: refused first
        fits = client.post("/collections/copy/restore", headers=admin, content=file)
        assert fits.status_code == 200, fits.text
        big = file + b" " * 4096
        declared = client.post("/collections/big/restore", headers=admin, content=big)
        assert declared.status_code == 413
        assert "BASTION_MAX_RESTORE_BYTES" in declared.json()["status"]["error"]

        def chunks() -> Iterator[bytes]:
            yield big[:3000]
            yield big[3000:]

        streamed = client.post("/collections/big/restore", headers=admin, content=chunks())
        assert streamed.status_code == 413
        assert client.get("/collections/big/exists", headers=admin).json()["result"] == {
            "exists": False
        }


def test_a_hand_made_file_with_a_bad_config_or_an_id_twice_is_refused(
    admin: httpx.Client, backup: bytes
) -> None:
    lines = lines_of(backup)
    lines[0]["config"]["vectors"]["size"] = 0
    refused = restore(admin, "kb-config", resealed(lines))
    assert refused.status_code == 400
    assert "the header's config" in refused.json()["status"]["error"]
    assert not exists(admin, "kb-config")
    lines = lines_of(backup)
    lines[2400]["id"] = lines[1]["id"]  # another batch: the upserts alone would not notice
    twice = restore(admin, "kb-twice", resealed(lines))
    assert twice.status_code == 400, twice.text
    assert "appear more than once" in twice.json()["status"]["error"]
    assert not exists(admin, "kb-twice")
