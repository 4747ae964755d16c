"""``bastion migrate-data``: an embedded installation moved onto PostgreSQL, verified,
then served by a replica that has only the database URL and the master key file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from bastion.audit import verify_chain
from bastion.storage import Database
from tests.support.postgres import fresh_database
from tests.support.replicas import replica, running
from tests.support.server import ADMIN_PASSWORD, ROOT, LiveServer, start_server


def _migrate(source: Path, destination: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "migrate-data",
            "--from",
            str(source),
            "--to",
            destination,
        ],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def test_embedded_installation_moves_to_postgres_and_is_served(
    pgvector_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "embedded" / "data"
    embedded = LiveServer(start_server(data))
    try:
        token = embedded.token(role="developer")
        bearer = {"Authorization": f"Bearer {token}"}
        created = httpx.put(
            f"{embedded.url}/collections/moved",
            headers=bearer,
            json={"vectors": {"size": 3, "distance": "Cosine"}},
        )
        assert created.status_code == 200, created.text
        points = [{"id": n, "vector": [1.0, n, 0.5], "payload": {"n": n}} for n in range(1, 251)]
        upserted = httpx.put(
            f"{embedded.url}/collections/moved/points?wait=true",
            headers=bearer,
            json={"points": points},
        )
        assert upserted.status_code == 200, upserted.text
    finally:
        embedded.server.stop()

    url = fresh_database(pgvector_url)
    moved = _migrate(data, url)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "Verified" in moved.stdout
    assert "master.key" in moved.stdout

    db = Database(url)
    try:
        with db.read() as conn:
            assert verify_chain(conn).ok
    finally:
        db.dispose()

    again = _migrate(data, url)  # the destination is no longer empty
    assert again.returncode != 0
    assert "already holds an installation" in again.stderr

    server = replica(tmp_path, "replica", url, "")
    del server.env["BASTION_MASTER_KEY"]
    server.env["BASTION_MASTER_KEY_FILE"] = str(data / "master.key")
    server.env["BASTION_PUBLIC_URL"] = embedded.server.env["BASTION_PUBLIC_URL"]  # same `iss`
    with running([server]):
        live = LiveServer(server)
        bearer = {"Authorization": f"Bearer {token}"}  # signed before the move: still valid
        counted = httpx.post(
            f"{server.url}/collections/moved/points/count", headers=bearer, json={}
        )
        assert counted.status_code == 200, counted.text
        assert counted.json()["result"]["count"] == 250
        found = httpx.post(
            f"{server.url}/collections/moved/points/query",
            headers=bearer,
            json={"query": [1.0, 7.0, 0.5], "limit": 1, "with_payload": True},
        ).json()["result"]["points"]
        assert found[0]["payload"] == {"n": 7}
        login = {"username": "admin", "password": ADMIN_PASSWORD}
        assert httpx.post(f"{live.url}/auth/login", json=login).status_code == 200
