"""Issue 3 figures: recall@10 and QPS through Bastion over HTTP, beside the bare index.

One data folder serves every measurement. A server (authentication on) ingests the
data set through HTTP and is stopped cleanly, which saves its HNSW index; then one
server starts on that folder with the bench-only switch (a request without a credential
skips authentication; one with a Bearer token or api-key goes through the whole guard),
so authenticated and unauthenticated searches hit the same process and the same graph
(``bench.search`` measures them interleaved block by block, each block paired with the
bare index loaded in this process). Beside it, the same serving stack around an app that
does nothing (``bench.floor``) answers the same requests in the same blocks: the floor
no server on this stack goes below. Last, with the server stopped, the same index file
is loaded here again and queried bare, and through the engine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import orjson

from bastion.vectors import EmbeddedEngine, SearchQuery, key_to_id
from bastion.vectors.live import LiveCollection
from bench import search
from bench.data import Dataset, recall_at_k
from bench.load import JSON, Baseline, Variant
from bench.report import Results, fmt
from bench.search import COLLECTION, Bare
from bench.servers import (
    Credentials,
    ServerProcess,
    allow_bulk_reads,
    cpu_seconds,
    open_runtime,
    pid_of,
    rss_bytes,
    start,
    start_floor,
)

BATCH = 1_000  # points per upsert request
ROUNDS = 5  # in-process passes over the queries; the median is reported
# The search server runs one worker process per core of the 2-core machine the recorded
# figures come from (``bastion serve --workers 2``); the ingest server runs one.
SEARCH_WORKERS = 2
GiB = 1024**3


@dataclass(frozen=True)
class Ingest:
    points: int
    seconds: float  # time inside the upsert requests
    server_cpu: float
    batch_p50_s: float
    rss_empty: int  # server RSS before the collection existed
    rss_after: int  # right after the last upsert


def _points_body(dataset: Dataset, start_at: int, end: int) -> bytes:
    points = [{"id": i, "vector": dataset.vectors[i]} for i in range(start_at, end)]
    return orjson.dumps({"points": points}, option=orjson.OPT_SERIALIZE_NUMPY)


def ingest(server: ServerProcess, dataset: Dataset) -> Ingest:
    token = Credentials(server.data_dir, server.env).token(role="developer", acr="aal2")
    headers = {**JSON, "authorization": f"Bearer {token}"}
    pid = pid_of(server)
    rss_empty = rss_bytes(pid)
    n, dim = dataset.vectors.shape
    with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
        spec = {"vectors": {"size": dim, "distance": "Cosine"}}
        client.put(f"/collections/{COLLECTION}", json=spec).raise_for_status()
        latencies = []
        cpu_before = cpu_seconds(pid)
        for start_at in range(0, n, BATCH):
            body = _points_body(dataset, start_at, min(n, start_at + BATCH))
            started = time.perf_counter()
            response = client.put(f"/collections/{COLLECTION}/points?wait=true", content=body)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
        server_cpu = cpu_seconds(pid) - cpu_before
        count = client.post(f"/collections/{COLLECTION}/points/count", json={"exact": True})
        if count.json()["result"]["count"] != n:
            raise RuntimeError(f"ingest lost points: {count.text}")
    return Ingest(
        n, sum(latencies), server_cpu, statistics.median(latencies), rss_empty, rss_bytes(pid)
    )


def _in_process(server: ServerProcess, dataset: Dataset) -> tuple[Bare, Bare, float]:
    """Bare ``AnnIndex`` and the whole engine, in this process, from the saved index."""
    rt = open_runtime(server)
    engine = EmbeddedEngine(rt.db, rt.data_dir, rt.settings)
    try:
        opened = time.perf_counter()
        engine.open()
        open_s = time.perf_counter() - opened
        tenant_id, live = _find(engine)
        ef = live.default_ef()

        def bare(q: np.ndarray) -> list[int]:
            labels, _ = live.ann.search(q, 10, ef=ef)
            return [int(key_to_id(str(live.keys[int(slot)]))) for slot in labels]

        async def through_engine() -> tuple[float, list[list[int]]]:
            found = []
            started = time.perf_counter()
            for q in dataset.queries:
                scored = await engine.search(tenant_id, COLLECTION, SearchQuery(vector=q, limit=10))
                found.append([int(key_to_id(point.key)) for point in scored])
            return time.perf_counter() - started, found

        bare_result = _timed_queries(lambda: [bare(q) for q in dataset.queries], dataset)
        engine_runs = [asyncio.run(through_engine()) for _ in range(ROUNDS)]
        seconds = statistics.median(run[0] for run in engine_runs)
        n = len(dataset.queries)
        engine_result = Bare(
            n / seconds, recall_at_k(engine_runs[0][1], dataset.truth), seconds / n * 1e6
        )
        return bare_result, engine_result, open_s
    finally:
        rt.close()


@contextmanager
def paired_bare_index(server: ServerProcess, dataset: Dataset) -> Iterator[Baseline]:
    """The saved index loaded in this process beside the running servers: a function
    that times the bare index over queries ``start:end`` (for the paired ratios)."""
    rt = open_runtime(server)
    engine = EmbeddedEngine(rt.db, rt.data_dir, rt.settings)
    try:
        engine.open()
        _, live = _find(engine)
        ef = live.default_ef()
        queries = [np.ascontiguousarray(q, dtype=np.float32) for q in dataset.queries]

        def rate(start_at: int, end: int) -> float:
            started = time.perf_counter()
            for q in queries[start_at:end]:
                live.ann.search(q, 10, ef=ef)
            return (end - start_at) / (time.perf_counter() - started)

        yield rate
    finally:
        rt.close()  # not engine.close(): the servers own the saved index


def _timed_queries(work: Callable[[], list[list[int]]], dataset: Dataset) -> Bare:
    seconds = []
    found: list[list[int]] = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        found = work()
        seconds.append(time.perf_counter() - started)
    n = len(dataset.queries)
    median = statistics.median(seconds)
    return Bare(n / median, recall_at_k(found, dataset.truth), median / n * 1e6)


def _find(engine: EmbeddedEngine) -> tuple[str, LiveCollection]:
    for (tenant_id, name), live in engine._collections.items():
        if name == COLLECTION:
            return tenant_id, live
    raise RuntimeError("the bench collection did not load")


def run(root: Path, dataset: Dataset, results: Results) -> None:
    data_dir = root / "vectors" / "data"
    first = start(data_dir)
    try:
        loaded = ingest(first, dataset)
    finally:
        first.stop()  # clean shutdown: the engine saves its HNSW index

    restarted = time.perf_counter()
    # One server with the bench's own app (bench/app.py): requests without a credential
    # skip the door, requests with one go through all of it. So "auth on" and "auth off"
    # are the same process serving the same index from the same memory.
    server = start(data_dir, auth=False, workers=SEARCH_WORKERS)
    restart_s = time.perf_counter() - restarted
    floor = None
    try:
        floor = start_floor(root / "vectors", workers=SEARCH_WORKERS)
        rss_loaded = rss_bytes(pid_of(server))
        allow_bulk_reads(server)
        credentials = Credentials(server.data_dir, server.env)
        bearer = credentials.token(role="viewer", acr="aal2")
        api_key = credentials.api_key(role="viewer")
        pid = pid_of(server)
        variants = [
            Variant("Bearer token", server.url, pid, {"authorization": f"Bearer {bearer}"}),
            Variant("api-key", server.url, pid, {"api-key": api_key}),
            Variant(search.OFF, server.url, pid, {}),
        ]
        search.guard(variants, results)
        floor_variant = Variant(search.FLOOR, floor.url, floor.process.pid, {})
        with paired_bare_index(server, dataset) as bare_rate:
            found = search.searches([*variants, floor_variant], dataset, bare_rate)
    finally:
        if floor is not None:
            floor.stop()
        server.stop()
    bare, engine, open_s = _in_process(server, dataset)
    search.report(dataset, found, bare, engine, results)
    _report_ingest(dataset, loaded, rss_loaded, restart_s, open_s, results)


def _report_ingest(
    dataset: Dataset,
    loaded: Ingest,
    rss_loaded: int,
    restart_s: float,
    open_s: float,
    results: Results,
) -> None:
    n, dim = dataset.vectors.shape
    rate = loaded.points / loaded.seconds
    section = results.section("Ingest and memory (issue 3)", "figure", "value", "note")
    section.add(
        "upsert throughput over HTTP",
        f"{fmt(rate)} points/s",
        f"{BATCH:,} points per PUT …/points?wait=true, 1 client, Bearer; {loaded.seconds:.1f} s "
        f"for {n:,} points (includes the HNSW inserts: a write is searchable when it returns)",
    )
    section.add(
        "upsert batch latency (p50)", f"{loaded.batch_p50_s * 1e3:.0f} ms", f"{BATCH:,} points"
    )
    section.add(
        "server CPU per point",
        f"{loaded.server_cpu / n * 1e6:.0f} µs",
        "user + system, all server threads (hnswlib inserts use both cores)",
    )
    section.add(
        "restart with a saved index (until every worker listens)",
        f"{restart_s:.1f} s",
        f"{n:,} rows read from SQLite + index file loaded; in-process engine.open(): "
        f"{open_s:.1f} s",
    )
    raw = dim * 4
    for label, rss in (("after ingest", loaded.rss_after), ("after restart", rss_loaded)):
        per_vector = (rss - loaded.rss_empty) / n
        section.add(
            f"server RSS growth per vector, {label}",
            f"{per_vector:,.0f} B",
            f"{per_vector / raw:.2f} x the {raw:,} B of raw float32; "
            f"→ {per_vector * 1e6 / GiB:.2f} GiB per million vectors",
        )
    section.notes.append(
        "RSS is VmRSS of the server process (after the restart: of one of its 2 workers, "
        "the mean; each holds its own copy); growth is from the ingest server before the "
        "collection existed. Points carry no payload."
    )
    per_million = (rss_loaded - loaded.rss_empty) / n * 1e6 / GiB
    results.headline(
        "upsert throughput", f"{fmt(rate)} points/s", f"HTTP, batches of {BATCH:,}, 1 client"
    )
    results.headline(
        "memory per million vectors",
        f"{per_million:.2f} GiB",
        f"{dim}-d float32, server RSS growth after a restart, extrapolated from {n:,}",
    )
