"""``bastion migrate-data``: an embedded installation moved onto PostgreSQL, verified,
then served by a replica that has only the database URL and the master key file.

Every refusal comes before the destination is touched (it keeps not even a schema):
a source whose server still runs, a table Bastion does not know, a payload PostgreSQL's
``jsonb`` cannot hold (U+0000), another master key than the installation's. Payloads with
other control characters and characters beyond the BMP are carried as they were.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg import sql

from bastion.audit import verify_chain
from bastion.storage import Database
from tests.support.postgres import fresh_database
from tests.support.replicas import new_master_key, replica, running
from tests.support.server import ADMIN_PASSWORD, ROOT, LiveServer, free_port, start_server

# Payloads PostgreSQL can hold, though they are awkward: C0 and C1 controls, an escape
# sequence, line and paragraph separators, a byte-order mark, characters beyond the BMP,
# in keys and in values, nested.
ODD_PAYLOADS: dict[int, dict[str, Any]] = {
    1001: {"controls": "bell\x07 tab\t nl\n cr\r del\x7f c1\x85 esc\x1b[31mred\x1b[0m"},
    1002: {
        "beyond the BMP": "😀 𝄞 𠜎 \U0010fffd",
        "\U0001d528\U0001d522\U0001d536": ["\u2028", "\u2029", "\ufeff"],
    },
    1003: {"key\x01with\x1fcontrols": {"nested\x02": ["\x03", "😀", {"\x7f": "\u200b"}]}},
}


@dataclass(frozen=True)
class Source:
    data: Path  # a stopped embedded installation's folder: tests copy it
    token: str  # a developer's access token, signed before the move
    public_url: str


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """An embedded installation: a collection of 250 points (and three with awkward
    payloads), users, a TOTP seed sealed with its master key, the audit chain."""
    data = tmp_path_factory.mktemp("embedded") / "data"
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
        points += [
            {"id": n, "vector": [0.5, n, 1.0], "payload": payload}
            for n, payload in ODD_PAYLOADS.items()
        ]
        upserted = httpx.put(
            f"{embedded.url}/collections/moved/points?wait=true",
            headers=bearer,
            json={"points": points},
        )
        assert upserted.status_code == 200, upserted.text
        embedded.user(role="viewer", username="seeded")  # a pending TOTP factor: a sealed seed
        login = {"username": "seeded", "password": ADMIN_PASSWORD}
        restricted = httpx.post(f"{embedded.url}/auth/login", json=login).json()["access_token"]
        enrolled = httpx.post(
            f"{embedded.url}/me/factors/totp", headers={"Authorization": f"Bearer {restricted}"}
        )
        assert enrolled.status_code in (200, 201), enrolled.text
    finally:
        embedded.server.stop()
    return Source(data, token, embedded.server.env["BASTION_PUBLIC_URL"])


def _copy(source: Source, tmp_path: Path) -> Path:
    """The installation's folder copied (a migration brings its source's schema up to
    date and holds its lock: each test has its own)."""
    data = tmp_path / "data"
    shutil.copytree(source.data, data)
    return data


def _migrate(
    source: Path, destination: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
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
        env={**clean, "COLUMNS": "200", **(env or {})},
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def _tables_in(url: str) -> list[str]:
    """The destination's tables: none at all when a refusal came before any write."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def _refused(moved: subprocess.CompletedProcess[str], url: str) -> str:
    """A refusal: exit 1, one clear line, no traceback, the destination untouched."""
    assert moved.returncode == 1, moved.stdout + moved.stderr
    assert "Traceback" not in moved.stderr, moved.stderr
    assert moved.stderr.startswith("error: "), moved.stderr
    assert _tables_in(url) == []
    return " ".join(moved.stderr.split())


def test_embedded_installation_moves_to_postgres_and_is_served(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    data = _copy(source, tmp_path)
    url = fresh_database(pgvector_url)
    moved = _migrate(data, url)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "copying" in moved.stdout  # the progress bars
    assert "moving points" in moved.stdout
    assert "Verified" in moved.stdout
    assert "253 points in their pgvector tables" in moved.stdout
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
    server.env["BASTION_PUBLIC_URL"] = source.public_url  # same `iss`
    with running([server]):
        live = LiveServer(server)
        bearer = {"Authorization": f"Bearer {source.token}"}  # signed before the move
        counted = httpx.post(
            f"{server.url}/collections/moved/points/count", headers=bearer, json={}
        )
        assert counted.status_code == 200, counted.text
        assert counted.json()["result"]["count"] == 253
        found = httpx.post(
            f"{server.url}/collections/moved/points/query",
            headers=bearer,
            json={"query": [1.0, 7.0, 0.5], "limit": 1, "with_payload": True},
        ).json()["result"]["points"]
        assert found[0]["payload"] == {"n": 7}
        odd = httpx.post(
            f"{server.url}/collections/moved/points",
            headers=bearer,
            json={"ids": list(ODD_PAYLOADS), "with_payload": True},
        ).json()["result"]
        assert {point["id"]: point["payload"] for point in odd} == ODD_PAYLOADS
        login = {"username": "admin", "password": ADMIN_PASSWORD}
        assert httpx.post(f"{live.url}/auth/login", json=login).status_code == 200


def test_migrating_a_folder_whose_server_runs_is_refused_naming_it(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    data = _copy(source, tmp_path)
    running_server = start_server(data)
    try:
        url = fresh_database(pgvector_url)
        said = _refused(_migrate(data, url), url)
        assert running_server.process is not None
        assert f"in use by another Bastion server (pid {running_server.process.pid})" in said
    finally:
        running_server.stop()


def test_source_with_a_table_bastion_does_not_know_is_refused(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    data = _copy(source, tmp_path)
    with sqlite3.connect(data / "bastion.db") as conn:
        conn.execute("CREATE TABLE operator_notes (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO operator_notes (note) VALUES ('kept by hand')")
    url = fresh_database(pgvector_url)
    said = _refused(_migrate(data, url), url)
    assert "tables Bastion does not know: operator_notes" in said


@pytest.mark.parametrize(
    "payload",
    [{"note": "before\x00after"}, {"outer": [{"key\x00": 1}]}],
    ids=["in-a-value", "in-a-nested-key"],
)
def test_payload_with_nul_character_is_refused_naming_the_point(
    pgvector_url: str, source: Source, tmp_path: Path, payload: dict[str, Any]
) -> None:
    """jsonb cannot hold U+0000 (the pgvector engine refuses it on upsert with a 400); the
    embedded engine stores it. Refused before anything is written, naming the point."""
    data = _copy(source, tmp_path)
    with sqlite3.connect(data / "bastion.db") as conn:  # as the embedded engine stores it
        conn.execute(
            "UPDATE points SET payload = ? WHERE point_id = ?",
            (orjson.dumps(payload).decode(), f"{1002:020d}"),
        )
    url = fresh_database(pgvector_url)
    said = _refused(_migrate(data, url), url)
    assert "point 1002 of collection 'moved' has the character U+0000 in its payload" in said


def test_text_with_nul_character_is_refused_naming_the_row(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    """PostgreSQL's text holds no U+0000 at all (a payload index on such a field name)."""
    data = _copy(source, tmp_path)
    with sqlite3.connect(data / "bastion.db") as conn:
        conn.execute(
            "INSERT INTO payload_indexes (collection_id, field, schema) "
            "SELECT id, ?, 'keyword' FROM collections WHERE name = 'moved'",
            ("tag\x00x",),
        )
    url = fresh_database(pgvector_url)
    said = _refused(_migrate(data, url), url)
    assert "payload_indexes.field holds the character U+0000 (row collection_id col_" in said


def test_collection_wider_than_pgvector_indexes_is_refused(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    """The embedded engine takes 65,536 dimensions; pgvector's HNSW at most 2,000."""
    data = _copy(source, tmp_path)
    with sqlite3.connect(data / "bastion.db") as conn:
        conn.execute(
            "INSERT INTO collections (id, tenant_id, name, dim, distance, config, created_at) "
            "SELECT 'col_wide', tenant_id, 'wide', 4096, distance, config, created_at "
            "FROM collections WHERE name = 'moved'"
        )
    url = fresh_database(pgvector_url)
    said = _refused(_migrate(data, url), url)
    assert "more dimensions than pgvector indexes (2000): 'wide' (4096)" in said


def test_another_master_key_than_the_installations_is_refused(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    """The TOTP seeds are copied sealed with the installation's key; signing keys sealed
    with another would leave replicas able to read the one and not the other."""
    data = _copy(source, tmp_path)
    url = fresh_database(pgvector_url)
    said = _refused(_migrate(data, url, {"BASTION_MASTER_KEY": new_master_key()}), url)
    assert "the master key given does not unseal this installation's TOTP seeds" in said


def _rows_in(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return {
            name: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone()[0]  # type: ignore[index]
            for name in tables
        }


def test_refusal_while_moving_points_keeps_nothing_and_a_rerun_completes(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    """PostgreSQL refuses one collection's vector table (an object of that name is
    already there: a condition no up-front check sees), after the rows and another
    collection's points were written: nothing is kept, one line says what stopped the move
    and what to do, and the same command then does the whole move."""
    data = _copy(source, tmp_path)
    first = "col_" + "0" * 32  # moved before 'moved' (collections go in id order)
    with sqlite3.connect(data / "bastion.db") as conn:
        conn.execute(
            "INSERT INTO collections (id, tenant_id, name, dim, distance, config, created_at) "
            "SELECT ?, tenant_id, 'first', dim, distance, config, created_at "
            "FROM collections WHERE name = 'moved'",
            (first,),
        )
        conn.execute(
            "INSERT INTO points (collection_id, point_id, seq, version, vector, payload) "
            "SELECT ?, point_id, seq, version, vector, payload FROM points "
            "WHERE point_id = ?",
            (first, f"{7:020d}"),
        )
        (moved_id,) = conn.execute("SELECT id FROM collections WHERE name = 'moved'").fetchone()
    url = fresh_database(pgvector_url)
    blocker = sql.SQL("{} AS (x int)").format(sql.Identifier(f"pgv_{moved_id}"))
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TYPE ") + blocker)

    failed = _migrate(data, url)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr, failed.stderr
    assert failed.stderr.startswith("error: "), failed.stderr
    said = " ".join(failed.stderr.split())
    assert "the move stopped while moving the points of collection 'moved'" in said
    assert f'"pgv_{moved_id}" already exists' in said
    assert "Nothing was kept" in said
    assert "run the same migrate-data command again" in said
    assert "Verified" not in failed.stdout
    assert [t for t in _tables_in(url) if t.startswith("pgv_")] == []  # not even 'first'
    tables = ("tenants", "users", "audit_events", "signing_keys", "collections", "points")
    assert set(_rows_in(url, tables).values()) == {0}

    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TYPE {}").format(sql.Identifier(f"pgv_{moved_id}")))
    again = _migrate(data, url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Verified" in again.stdout
    assert "2 collections, 254 points in their pgvector tables" in again.stdout


def test_destination_that_cannot_be_reached_is_a_clear_error(
    source: Source, tmp_path: Path
) -> None:
    """No server listens there: one line, exit 1, no traceback, the source's lock freed."""
    data = _copy(source, tmp_path)
    url = f"postgresql://bastion@127.0.0.1:{free_port()}/bastion"
    moved = _migrate(data, url)
    assert moved.returncode == 1, moved.stdout + moved.stderr
    assert "Traceback" not in moved.stderr, moved.stderr
    said = " ".join(moved.stderr.split())
    assert said.startswith("error: the move could not start: OperationalError"), said
    assert "Nothing was copied: check the --to URL and that the database is up" in said


def test_destination_gone_while_moving_points_keeps_nothing_and_says_so(
    pgvector_url: str, source: Source, tmp_path: Path
) -> None:
    """The database goes away mid-move: another session holds, uncommitted, a table of the
    name the move creates, so the move waits there (after every row was written); the
    administrator then ends the move's connection. One line, exit 1, nothing kept; once
    the other session is gone the same command does the whole move."""
    data = _copy(source, tmp_path)
    with sqlite3.connect(data / "bastion.db") as conn:
        (moved_id,) = conn.execute("SELECT id FROM collections WHERE name = 'moved'").fetchone()
    url = fresh_database(pgvector_url)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    with psycopg.connect(plain) as holder, psycopg.connect(plain, autocommit=True) as admin:
        holder.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(f"pgv_{moved_id}")))
        process = subprocess.Popen(
            [sys.executable, "-m", "bastion", "migrate-data", "--from", str(data), "--to", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**clean, "COLUMNS": "200"},
            cwd=ROOT,
        )
        try:
            waiting = None
            for _ in range(600):  # the move reaches the table it waits for
                waiting = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'CREATE TABLE%%' AND datname = current_database()"
                ).fetchone()
                if waiting or process.poll() is not None:
                    break
                time.sleep(0.05)
            assert waiting is not None, process.communicate()
            admin.execute("SELECT pg_terminate_backend(%s)", (waiting[0],))
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        holder.rollback()
    assert process.returncode == 1, out + err
    assert "Traceback" not in err, err
    said = " ".join(err.split())
    assert "the move stopped while moving the points of collection 'moved'" in said, said
    assert "terminating connection due to administrator command" in said, said
    assert "Nothing was kept" in said
    assert "run the same migrate-data command again" in said
    assert [t for t in _tables_in(url) if t.startswith("pgv_")] == []
    tables = ("tenants", "users", "audit_events", "signing_keys", "collections")
    assert set(_rows_in(url, tables).values()) == {0}

    again = _migrate(data, url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Verified" in again.stdout
