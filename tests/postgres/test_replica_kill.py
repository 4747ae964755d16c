"""``kill -9`` of a replica in the middle of an ingest (issue 17).

Clients upsert batches through two replicas at once and record every batch a replica
acknowledged (``wait=true`` answered 200). One replica is killed with SIGKILL while the
batches fly. Then, through the survivor and through a fresh replica on an empty folder,
every acknowledged point is there with its vector and payload, and an exact search finds
it; a batch that was not acknowledged is wholly there or wholly absent (one transaction
with its audit event), never a point without its payload; and the audit chain verifies.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from sqlalchemy import select

from bastion.audit import verify_chain
from bastion.storage import Database
from bastion.storage.schema import audit_events
from tests.support.replicas import Pair, replica, running
from tests.support.server import ServerProcess, worker_pids

DIM = 8
BATCH = 10  # points per upsert
CLIENTS = 4
BATCHES_PER_CLIENT = 30
KILL_AFTER = 24  # acknowledged batches before the kill: well inside the ingest


@dataclass
class Ingest:
    """What the clients sent, and which batches were acknowledged."""

    collection: str
    token: str
    sent: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # batch → points
    acknowledged: set[int] = field(default_factory=set)
    refused: dict[int, str] = field(default_factory=dict)  # batch → what a live replica said
    lock: threading.Lock = field(default_factory=threading.Lock)

    def points(self, batches: set[int]) -> Iterator[dict[str, Any]]:
        for batch in sorted(batches):
            yield from self.sent[batch]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _batch(number: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Integer components: exact in float32, so a stored vector compares equal."""
    vectors = rng.integers(-1000, 1000, size=(BATCH, DIM)).astype(float)
    return [
        {
            "id": number * BATCH + index,
            "vector": vectors[index].tolist(),
            "payload": {"batch": number, "index": index, "text": f"point {index} 😀\x1b"},
        }
        for index in range(BATCH)
    ]


def _ingest(ingest: Ingest, doomed: ServerProcess, survivor: ServerProcess, kill: Any) -> None:
    """CLIENTS threads, each sending its batches alternately through both replicas; the
    doomed replica is killed (``kill()``) once KILL_AFTER batches were acknowledged."""
    killed = threading.Event()

    def client(number: int) -> None:
        rng = np.random.default_rng(number)
        with httpx.Client(timeout=30.0) as http:
            for step in range(BATCHES_PER_CLIENT):
                batch = number * BATCHES_PER_CLIENT + step
                points = _batch(batch, rng)
                target = doomed if step % 2 else survivor
                with ingest.lock:
                    ingest.sent[batch] = points
                try:
                    answer = http.put(
                        f"{target.url}/collections/{ingest.collection}/points?wait=true",
                        headers=_bearer(ingest.token),
                        json={"points": points},
                    )
                except httpx.TransportError:
                    continue  # the doomed replica died under it (or before)
                with ingest.lock:
                    if answer.status_code == 200:
                        ingest.acknowledged.add(batch)
                    elif target is survivor or not killed.is_set():
                        ingest.refused[batch] = f"{answer.status_code} {answer.text}"
                    if len(ingest.acknowledged) >= KILL_AFTER and not killed.is_set():
                        killed.set()
                        kill()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    assert killed.is_set()


def _check(ingest: Ingest, server: ServerProcess) -> int:
    """Every acknowledged point whole and found; other batches whole or absent. Returns
    how many points are stored."""
    bearer = _bearer(ingest.token)
    every = [point["id"] for point in ingest.points(set(ingest.sent))]
    read = httpx.post(
        f"{server.url}/collections/{ingest.collection}/points",
        headers=bearer,
        json={"ids": every, "with_payload": True, "with_vector": True},
        timeout=60.0,
    )
    assert read.status_code == 200, read.text
    stored = {point["id"]: point for point in read.json()["result"]}
    for batch, points in ingest.sent.items():
        present = [point["id"] in stored for point in points]
        if batch in ingest.acknowledged:
            assert all(present), f"batch {batch} was acknowledged, then lost on {server.url}"
        else:
            assert len(set(present)) == 1, f"batch {batch} is half-written on {server.url}"
        for point in points:
            if point["id"] in stored:
                assert stored[point["id"]]["vector"] == point["vector"]
                assert stored[point["id"]]["payload"] == point["payload"]
    acknowledged = list(ingest.points(ingest.acknowledged))
    found: list[Any] = []
    for start in range(0, len(acknowledged), 100):  # at most 100 searches per request
        searched = httpx.post(
            f"{server.url}/collections/{ingest.collection}/points/search/batch",
            headers=bearer,
            json={
                "searches": [
                    {"vector": point["vector"], "limit": 1, "params": {"exact": True}}
                    for point in acknowledged[start : start + 100]
                ]
            },
            timeout=60.0,
        )
        assert searched.status_code == 200, searched.text
        found += [hits[0]["id"] if hits else None for hits in searched.json()["result"]]
    assert found == [point["id"] for point in acknowledged]
    counted = httpx.post(
        f"{server.url}/collections/{ingest.collection}/points/count", headers=bearer, json={}
    )
    assert counted.json()["result"]["count"] == len(stored)
    return len(stored)


def _audited_points(url: str, collection: str) -> int:
    """Points the audit log says were upserted into ``collection``; the chain verifies."""
    db = Database(url)
    try:
        with db.read() as conn:
            report = verify_chain(conn)
            details = conn.execute(
                select(audit_events.c.details).where(audit_events.c.action == "points.upserted")
            ).scalars()
            upserted = sum(d["count"] for d in details if d["collection"] == collection)
    finally:
        db.dispose()
    assert report.ok, report.problem
    return upserted


def _new_collection(pair: Pair, name: str) -> Ingest:
    ingest = Ingest(name, pair.a.token(role="developer"))
    created = httpx.put(
        f"{pair.b.url}/collections/{name}",
        headers=_bearer(ingest.token),
        json={"vectors": {"size": DIM, "distance": "Euclid"}},
    )
    assert created.status_code == 200, created.text
    return ingest


def test_kill_9_of_a_replica_mid_ingest_loses_no_acknowledged_point(pair: Pair) -> None:
    ingest = _new_collection(pair, "ingest_killed")
    doomed = replica(pair.root, "doomed", pair.url, pair.master_key)
    with running([doomed]):
        _ingest(ingest, doomed, pair.b.server, doomed.kill)
        assert doomed.process is not None
        assert doomed.process.returncode == -9
    assert ingest.refused == {}
    assert len(ingest.acknowledged) < len(ingest.sent)  # batches were lost with it…
    assert len(ingest.acknowledged) > KILL_AFTER  # …and the survivor kept taking more
    stored = _check(ingest, pair.b.server)
    fresh = replica(pair.root, "after_kill", pair.url, pair.master_key)
    with running([fresh]):
        assert _check(ingest, fresh) == stored
    assert _audited_points(pair.url, ingest.collection) == stored


def test_kill_9_of_one_worker_mid_ingest_loses_no_acknowledged_point(pair: Pair) -> None:
    """``--workers 2`` is allowed on PostgreSQL: each worker is just another replica. One
    worker killed with SIGKILL mid-ingest: the parent stops the other and exits non-zero
    (for its supervisor to start it again); nothing either worker acknowledged is lost."""
    ingest = _new_collection(pair, "ingest_worker_killed")
    workers = replica(pair.root, "workers", pair.url, pair.master_key)
    workers.env["BASTION_WORKERS"] = "2"

    def kill_one_worker() -> None:
        assert workers.process is not None
        children = worker_pids(workers.process.pid)
        assert len(children) == 2, children
        os.kill(children[0], signal.SIGKILL)

    with running([workers]):
        deadline = time.monotonic() + 30  # printed once every worker accepts connections
        while "each a replica on the shared PostgreSQL database" not in workers.log():
            assert time.monotonic() < deadline, workers.log()
            time.sleep(0.1)
        for _ in range(8):  # new connections: the kernel spreads them over both workers
            listed = httpx.get(f"{workers.url}/collections", headers=_bearer(ingest.token))
            names = {item["name"] for item in listed.json()["result"]["collections"]}
            assert ingest.collection in names  # created through B
        _ingest(ingest, workers, pair.b.server, kill_one_worker)
        assert workers.process is not None
        assert workers.process.wait(30) != 0
    assert ingest.refused == {}
    stored = _check(ingest, pair.b.server)
    assert _audited_points(pair.url, ingest.collection) == stored
