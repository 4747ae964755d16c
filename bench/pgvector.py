"""Issue 17 figures: the pgvector engine beside the embedded one, and beside pgvector alone.

In one run, on the same data set: a throwaway PostgreSQL with pgvector (the test
dependency's server, durable settings, ``shared_buffers`` large enough for the index),
one Bastion server on it (the pgvector engine; PostgreSQL allows one worker process),
and one Bastion server on SQLite (the embedded engine, 2 worker processes as in the
search bench). Both ingest the data over HTTP
(upsert throughput), then answer the same searches over HTTP with 1 and 8 clients
(recall@10, QPS; authentication off, the same switch as the search bench). The floor for
this backend is pgvector queried directly by psycopg from this process (1 and 8 threads,
one connection each) with the statement the engine sends (``queries.nearest``: its
``SET LOCAL`` settings and ``ORDER BY embedding <#> q LIMIT 10``), binary vectors.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from tests.support.postgres import fresh_database, postgres_cluster
from tests.support.server import start_server

from bastion.vectors.pgvector import queries
from bastion.vectors.pgvector.rows import default_ef
from bastion.vectors.pgvector.server import conninfo
from bench import search
from bench.data import Dataset, recall_at_k
from bench.load import run_load
from bench.report import Results, fmt, ratio
from bench.servers import PRODUCTION, ServerProcess, pid_of
from bench.vectors import ingest

CLIENTS = (1, 8)
ROUNDS = 3  # passes over the queries per figure; the median QPS is reported
EF = 64  # the engines' default breadth at 100,000 points (64 per 100,000)
SHARED_BUFFERS = "1GB"  # the table and its HNSW index (~350 MB at 100,000 x 384) fit


@dataclass(frozen=True)
class Figure:
    qps: float
    recall: float


def _http(server: ServerProcess, dataset: Dataset, clients: int) -> Figure:
    calls = search.search_calls(dataset)
    pid = pid_of(server)
    runs = [
        run_load(server.url, calls, clients=clients, server_pid=pid, keep_bodies=True)
        for _ in range(ROUNDS)
    ]
    found = [search._ids(body) for body in runs[0].bodies]
    return Figure(statistics.median(r.rps for r in runs), recall_at_k(found, dataset.truth))


def _table(url: str) -> str:
    with psycopg.connect(conninfo(url)) as conn:
        row = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'pgv_%'"
        ).fetchone()
    if row is None:
        raise RuntimeError("the bench collection has no pgvector table")
    return str(row[0])


def _direct(url: str, dataset: Dataset, clients: int) -> Figure:
    """pgvector alone: ``clients`` threads, each with its own connection, the engine's SQL."""
    statement = queries.nearest(
        _table(url), "<#>", payload=False, vector=False, condition=None, exact=False
    )
    settings = queries.search_settings(EF, 10)
    queries_ = [np.ascontiguousarray(q, dtype=np.float32) for q in dataset.queries]
    connections = [psycopg.connect(conninfo(url), autocommit=True) for _ in range(clients)]
    for conn in connections:
        register_vector(conn)
    found: list[list[int]] = [[] for _ in queries_]

    def work(conn: psycopg.Connection[tuple[object, ...]], share: Sequence[int]) -> None:
        cur = conn.cursor(binary=True)
        for i in share:
            cur.execute(statement, {**settings, "q": queries_[i], "n": 10})
            found[i] = [int(str(row[0])) for row in cur.fetchall()]

    seconds = []
    try:
        for _ in range(ROUNDS):
            threads = [
                threading.Thread(target=work, args=(conn, range(start, len(queries_), clients)))
                for start, conn in enumerate(connections)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds.append(time.perf_counter() - started)
    finally:
        for conn in connections:
            conn.close()
    return Figure(len(queries_) / statistics.median(seconds), recall_at_k(found, dataset.truth))


def _server(data_dir: Path, env: dict[str, str]) -> ServerProcess:
    """The bench's own app (requests without a credential skip the door), as bench.servers
    starts it for the embedded blocks."""
    return start_server(data_dir, env={**PRODUCTION, **env}, module="bench.serve")


def run(root: Path, dataset: Dataset, results: Results) -> None:
    if default_ef(EF, len(dataset.vectors)) != EF:
        raise RuntimeError("the direct queries must use the engine's default breadth")
    with postgres_cluster(durable=True, shared_buffers=SHARED_BUFFERS) as cluster:
        url = fresh_database(cluster)
        pg = _server(root / "pgvector" / "data", {"BASTION_DATABASE_URL": url})
        embedded = _server(root / "embedded" / "data", {"BASTION_WORKERS": "2"})
        try:
            loads = {"embedded": ingest(embedded, dataset), "pgvector": ingest(pg, dataset)}
            http = {
                (name, clients): _http(server, dataset, clients)
                for clients in CLIENTS
                for name, server in (("embedded", embedded), ("pgvector", pg))
            }
        finally:
            pg.stop()
            embedded.stop()
        direct = {clients: _direct(url, dataset, clients) for clients in CLIENTS}
    _report(dataset, loads, http, direct, results)


def _report(
    dataset: Dataset,
    loads: dict[str, object],
    http: dict[tuple[str, int], Figure],
    direct: dict[int, Figure],
    results: Results,
) -> None:
    n, dim = dataset.vectors.shape
    section = results.section(
        "PostgreSQL + pgvector beside the embedded engine (issue 17)",
        "what",
        "clients",
        "QPS",
        "recall@10",
        "÷ pgvector direct",
    )
    for clients in CLIENTS:
        floor = direct[clients]
        section.add(
            "pgvector, direct (psycopg)", str(clients), fmt(floor.qps), ratio(floor.recall), "1"
        )
        for name in ("pgvector", "embedded"):
            got = http[(name, clients)]
            section.add(
                f"Bastion on {name}, HTTP",
                str(clients),
                fmt(got.qps),
                ratio(got.recall),
                ratio(got.qps / floor.qps),
            )
    for name, loaded in loads.items():
        seconds = getattr(loaded, "seconds", 0.0)
        section.add(f"upsert over HTTP, {name}", "1", f"{fmt(n / seconds)} points/s", "", "")
    section.notes.append(
        f"{n:,} x {dim}, Cosine, HNSW m=16 ef_construction=100 (pgvector: vector_ip_ops over "
        f"unit vectors), ef_search {EF}; authentication off; the embedded server runs 2 "
        "workers, the pgvector one 1 (PostgreSQL: one worker per replica); PostgreSQL "
        "shares the same 2 cores."
    )
    ratio8 = http[("pgvector", 8)].qps / direct[8].qps
    recall8 = http[("pgvector", 8)].recall
    results.target(
        "pgvector: HTTP ÷ direct, 8 clients, recall ≥ 0.95",
        f"{ratio8:.2f} at recall {recall8:.3f}",
        "≥ 0.7",
        ratio8 >= 0.7 and recall8 >= 0.95,
        "see docs/benchmarks.md (PostgreSQL + pgvector)",
    )
