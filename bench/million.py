"""``python -m bench.million``: one million 384-d vectors in the embedded engine (issue 3).

Not part of ``make bench`` (it takes a quarter of an hour on 2 cores): it shows that
1,000,000 x 384 float32 vectors fit and serve on this machine. The engine is used
in-process (no HTTP: the HTTP costs are ``make bench``'s subject); it writes every
point to SQLite and the HNSW index exactly as an upsert through the API would.
Prints ingest rate, process RSS, restart (index save + load) time, recall@10 and QPS at
the default search breadth (which grows with the collection) and at fixed ``hnsw_ef``.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from bastion.storage import Database
from bastion.storage.schema import tenants
from bastion.vectors import EmbeddedEngine
from bastion.vectors import models as body_models
from bench.data import make_dataset, recall_at_k

ACTOR = "bench"  # who the audit events of the bench writes name

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
BATCH = 5_000
TENANT = "ten_bench"


def rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def open_engine(folder: Path) -> EmbeddedEngine:
    engine = EmbeddedEngine(Database(f"sqlite:///{folder / 'bastion.db'}"), folder)
    engine.open()
    return engine


async def ingest(engine: EmbeddedEngine, vectors: np.ndarray) -> float:
    spec = body_models.collection_spec("million", {"vectors": {"size": 384, "distance": "Cosine"}})
    await engine.create_collection(TENANT, spec, actor=ACTOR)
    started = time.perf_counter()
    for start in range(0, len(vectors), BATCH):
        chunk = vectors[start : start + BATCH]
        points = [{"id": start + i, "vector": row} for i, row in enumerate(chunk.tolist())]
        writes, array = body_models.points_of({"points": points}, 65_536)
        await engine.upsert(TENANT, "million", writes, array, actor=ACTOR)
        if (start // BATCH) % 20 == 0:
            done = start + len(chunk)
            rate = done / (time.perf_counter() - started)
            print(f"  {done:>9,} points  {rate:,.0f} points/s  RSS {rss_gib():.2f} GiB", flush=True)
    return time.perf_counter() - started


async def search(
    engine: EmbeddedEngine, queries: np.ndarray, ef: int | None = None
) -> tuple[list[list[int]], float]:
    """Every query at the default breadth, or at ``ef`` (Qdrant's ``params.hnsw_ef``)."""
    found: list[list[int]] = []
    started = time.perf_counter()
    body = {"limit": 10, "params": {"hnsw_ef": ef}} if ef else {"limit": 10}
    for query in queries:
        asked = body_models.search_query(body, query.tolist())
        hits = await engine.search(TENANT, "million", asked)
        found.append([int(hit.key) for hit in hits])
    return found, len(queries) / (time.perf_counter() - started)


async def main() -> None:
    print(f"data set: {N:,} x 384, clustered, exact ground truth for 200 queries …", flush=True)
    data = make_dataset(n=N, queries=200)
    folder = Path(tempfile.mkdtemp(prefix="bastion-million-"))
    database = Database(f"sqlite:///{folder / 'bastion.db'}")
    database.migrate()
    with database.begin() as conn:
        conn.execute(insert(tenants).values(id=TENANT, name="bench", created_at=datetime.now(UTC)))
    base = rss_gib()
    engine = open_engine(folder)
    seconds = await ingest(engine, data.vectors)
    after_ingest = rss_gib()
    found, qps = await search(engine, data.queries)
    print(
        f"ingest: {N / seconds:,.0f} points/s ({seconds / 60:.1f} min); "
        f"RSS {after_ingest:.2f} GiB (+{after_ingest - base:.2f} GiB over the data set); "
        f"recall@10 {recall_at_k(found, data.truth):.3f}; {qps:,.0f} QPS (1 task)"
    )
    started = time.perf_counter()
    engine.close()
    closed = time.perf_counter() - started
    started = time.perf_counter()
    engine = open_engine(folder)
    opened = time.perf_counter() - started
    found, qps = await search(engine, data.queries)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"restart: save {closed:.1f} s, load {opened:.1f} s; recall@10 "
        f"{recall_at_k(found, data.truth):.3f}; {qps:,.0f} QPS; peak RSS {peak:.2f} GiB; "
        f"database {(folder / 'bastion.db').stat().st_size / 1024**3:.2f} GiB"
    )
    for ef in (64, 128, 256, 512, 640, 1024):
        found, qps = await search(engine, data.queries, ef)
        print(f"  hnsw_ef {ef:>5}: recall@10 {recall_at_k(found, data.truth):.3f}; {qps:,.0f} QPS")
    engine.close()


if __name__ == "__main__":
    asyncio.run(main())
