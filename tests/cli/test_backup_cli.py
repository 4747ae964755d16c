"""``bastion backup`` and ``bastion restore`` as an operator runs them (subprocesses): on
the data folder of a stopped server, and through a running server with a token."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from bastion.audit import StoredEvent, query
from bastion.config import load_settings
from bastion.datadir import lock_for_server
from bastion.identity.tenants import require_tenant
from bastion.runtime import Runtime
from bastion.vectors import (
    CollectionSpec,
    EmbeddedEngine,
    PayloadSelector,
    PointWrite,
    parse_point_id,
)
from tests.http.test_client_helper import PASSWORD, enrolled, next_code
from tests.support.cli import bastion, installed
from tests.support.server import LiveServer

UUID = "9d3f3e2a-0c52-4a8e-9f9e-6d3c8b7a1f20"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An installation (server stopped) with ``docs``: 300 points, a payload index."""
    folder = installed(tmp_path / "data")
    rt = Runtime.open(load_settings(data_dir=folder, argon2_profile="test"))
    with rt.db.read() as conn:
        tenant = require_tenant(conn, "default").id
    engine = EmbeddedEngine(rt.db, folder, rt.settings)
    engine.open()
    asyncio.run(engine.create_collection(tenant, CollectionSpec("docs", 8, "Dot"), actor="t"))
    asyncio.run(engine.create_payload_index(tenant, "docs", "n", "integer", actor="t"))
    vectors = np.random.default_rng(1).random((300, 8), dtype=np.float32)
    ids: list[Any] = [*range(299), UUID]
    writes = [PointWrite(parse_point_id(i), {"n": n}) for n, i in enumerate(ids)]
    asyncio.run(engine.upsert(tenant, "docs", writes, vectors, actor="t"))
    engine.close()
    rt.close()
    return folder


def run_json(data: Path, *args: str) -> Any:
    result = bastion(data, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def events(data: Path, action: str) -> list[StoredEvent]:
    rt = Runtime.open(load_settings(data_dir=data, argon2_profile="test"))
    try:
        with rt.db.read() as conn:
            return list(query(conn, tenant_id=None, action=action).events)
    finally:
        rt.close()


def points(data: Path, name: str) -> dict[str, Any]:
    rt = Runtime.open(load_settings(data_dir=data, argon2_profile="test"))
    engine = EmbeddedEngine(rt.db, data, rt.settings)
    engine.open()
    try:
        with rt.db.read() as conn:
            tenant = require_tenant(conn, "default").id

        async def read() -> dict[str, Any]:
            return {p.key: (p.payload, p.vector) async for p in engine.export(tenant, name)}

        found = asyncio.run(read())
        info = asyncio.run(engine.get_collection(tenant, name))
        assert set(info.payload_schema) == {"n"}
        keys = [parse_point_id(UUID)]
        selector = PayloadSelector()
        [point] = asyncio.run(engine.retrieve(tenant, name, keys, with_payload=selector,
                                              with_vector=False))  # fmt: skip
        assert point.payload == {"n": 299}
        return found
    finally:
        engine.close()
        rt.close()


def test_backup_and_restore_on_the_data_folder_round_trip(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "docs.ndjson"
    made = run_json(data, "backup", "docs", "--out", str(file))
    assert made["points"] == 300
    assert made["payload_indexes"] == {"n": "integer"}
    assert file.stat().st_mode & 0o077 == 0  # a whole collection: the owner's only
    restored = run_json(data, "restore", str(file), "--as", "docs-copy")
    assert restored["points"] == 300
    assert restored["sha256"] == made["sha256"]
    assert points(data, "docs-copy") == points(data, "docs")
    [backed_up] = events(data, "collection.backed_up")
    assert backed_up.actor == "cli:operator"
    assert backed_up.details["sha256"] == made["sha256"]
    [done] = events(data, "collection.restored")
    assert done.actor == "cli:operator"
    assert done.outcome == "success"


def test_the_table_output_says_what_was_done(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "docs.ndjson"
    made = bastion(data, "backup", "docs", "--out", str(file))
    assert made.returncode == 0, made.stderr
    assert "backed up docs: 300 points" in made.stdout
    restored = bastion(data, "restore", str(file), "--as", "again")
    assert restored.returncode == 0, restored.stderr
    assert "restored again from docs: 300 points" in restored.stdout


def test_restore_refuses_an_existing_name_and_says_what_to_do(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "docs.ndjson"
    run_json(data, "backup", "docs", "--out", str(file))
    refused = bastion(data, "restore", str(file), "--as", "docs")
    assert refused.returncode == 1
    assert "already exists" in refused.stderr
    assert "--as" in refused.stderr


def test_a_tampered_file_is_refused_before_anything_is_asked(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "docs.ndjson"
    run_json(data, "backup", "docs", "--out", str(file))
    lines = file.read_bytes().split(b"\n")
    point = orjson.loads(lines[7])
    point["payload"] = {"n": -1}
    lines[7] = orjson.dumps(point)
    file.write_bytes(b"\n".join(lines))
    refused = bastion(data, "restore", str(file), "--as", "forged")
    assert refused.returncode == 1
    assert "does not match its trailer" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = run_json(data, "collection", "list")
    assert [c["name"] for c in listed] == ["docs"]


def test_backup_does_not_overwrite_a_file_without_force(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "docs.ndjson"
    file.write_text("keep me")
    refused = bastion(data, "backup", "docs", "--out", str(file))
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert file.read_text() == "keep me"
    assert bastion(data, "backup", "docs", "--out", str(file), "--force").returncode == 0


def test_a_missing_collection_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    refused = bastion(data, "backup", "nope", "--out", str(tmp_path / "x.ndjson"))
    assert refused.returncode == 1
    assert "nope" in refused.stderr
    assert "bastion collection list" in refused.stderr
    assert not (tmp_path / "x.ndjson").exists()
    assert not (tmp_path / ".x.ndjson.partial").exists()


def test_on_the_data_folder_a_running_server_is_named(data: Path, tmp_path: Path) -> None:
    lock = lock_for_server(data)  # as a running server holds it
    try:
        refused = bastion(data, "backup", "docs", "--out", str(tmp_path / "d.ndjson"))
    finally:
        lock.release()
    assert refused.returncode == 1
    assert "in use" in refused.stderr
    assert "--url" in refused.stderr


# -- through a running server ------------------------------------------------------------


def test_backup_and_restore_through_the_server(live_server: LiveServer, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {live_server.token(role='admin', acr='aal3')}"}
    with httpx.Client(base_url=live_server.url, headers=admin, timeout=30) as http:
        assert http.put("/collections/web", json={"vectors": {"size": 2, "distance": "Dot"}})
        body = {"points": [{"id": i, "vector": [i, 1], "payload": {"i": i}} for i in range(50)]}
        assert http.put("/collections/web/points?wait=true", json=body).is_success
    file = tmp_path / "web.ndjson"
    url = ["--url", live_server.url]
    token = live_server.token(role="admin", acr="aal3")
    made = run_json(tmp_path, "backup", "web", "--out", str(file), *url, "--token", token)
    assert made["points"] == 50
    restored = bastion(tmp_path, "restore", str(file), "--as", "web2", *url, "--json",
                       env={"BASTION_TOKEN": live_server.token(role="developer")})  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["points"] == 50
    with httpx.Client(base_url=live_server.url, headers=admin, timeout=30) as http:
        counted = http.post("/collections/web2/points/count", json={}).json()
        assert counted["result"]["count"] == 50
    again = bastion(tmp_path, "restore", str(file), "--as", "web2", *url, "--token", token)
    assert again.returncode == 1
    assert "409" in again.stderr
    assert "--as" in again.stderr


def test_a_stale_token_is_told_what_the_policy_asks(
    live_server: LiveServer, tmp_path: Path
) -> None:
    aal2 = live_server.token(role="admin", acr="aal2")
    refused = bastion(tmp_path, "backup", "web", "--out", str(tmp_path / "w.ndjson"),
                      "--url", live_server.url, "--token", aal2)  # fmt: skip
    assert refused.returncode == 1
    assert "aal3" in refused.stderr
    assert "--token" in refused.stderr
    assert not (tmp_path / "w.ndjson").exists()


def test_url_without_credentials_says_which_to_give(tmp_path: Path) -> None:
    refused = bastion(tmp_path, "backup", "web", "--out", str(tmp_path / "w.ndjson"),
                      "--url", "http://127.0.0.1:9")  # fmt: skip
    assert refused.returncode == 1
    assert "--token" in refused.stderr
    assert "--user" in refused.stderr


def test_restore_through_the_server_with_a_sign_in(live_server: LiveServer, tmp_path: Path) -> None:
    """``--user`` signs in with a password and an authenticator code (``aal2``: what a
    restore needs by default), and ends that session afterwards."""
    admin = {"Authorization": f"Bearer {live_server.token(role='admin', acr='aal3')}"}
    with httpx.Client(base_url=live_server.url, headers=admin, timeout=30) as http:
        assert http.put("/collections/signed", json={"vectors": {"size": 2, "distance": "Dot"}})
        body = {"points": [{"id": i, "vector": [i, 1]} for i in range(1, 4)]}
        assert http.put("/collections/signed/points?wait=true", json=body).is_success
        file = tmp_path / "signed.ndjson"
        file.write_bytes(http.get("/collections/signed/backup").content)
    totp = enrolled(live_server, "rhea")
    restored = bastion(tmp_path, "restore", str(file), "--as", "signed-copy", "--url",
                       live_server.url, "--user", "rhea", "--password-stdin", "--json",
                       stdin=f"{PASSWORD}\n{next_code(totp)}\n")  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["points"] == 3
    wrong = bastion(tmp_path, "restore", str(file), "--as", "other", "--url", live_server.url,
                    "--user", "rhea", "--password-stdin", stdin="not it\n000000\n")  # fmt: skip
    assert wrong.returncode == 1
    assert "sign-in failed" in wrong.stderr
