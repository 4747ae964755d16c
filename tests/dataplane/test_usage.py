"""``bastion.vectors.usage``: points and size on disk per collection, on either engine
(what ``bastion collection list`` shows, and what the console can show)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.vectors import CollectionSpec, PointWrite, VectorEngine, parse_point_id
from bastion.vectors.usage import collection_usage
from tests.dataplane.conftest import ACTOR, run

A, B = "ten_a", "ten_b"
DIM = 16


def test_points_and_bytes_per_collection(engine: VectorEngine, tmp_path: Path) -> None:
    run(engine.create_collection(A, CollectionSpec("docs", DIM, "Cosine"), actor=ACTOR))
    run(engine.create_collection(A, CollectionSpec("empty", DIM, "Dot"), actor=ACTOR))
    run(engine.create_collection(B, CollectionSpec("docs", DIM, "Cosine"), actor=ACTOR))
    vectors = np.random.default_rng(4).normal(size=(200, DIM)).astype(np.float32)
    writes = [PointWrite(parse_point_id(i), {"text": "x" * 100}) for i in range(200)]
    run(engine.upsert(A, "docs", writes, vectors, actor=ACTOR))
    db = engine.db  # type: ignore[attr-defined]
    data_dir = getattr(engine, "index_dir", tmp_path / "vectors").parent
    mine = {u.name: u for u in collection_usage(db, data_dir, tenant_id=A)}
    assert sorted(mine) == ["docs", "empty"]
    assert mine["docs"].points == 200
    assert mine["docs"].disk_bytes >= 200 * (DIM * 4 + 100)  # vectors and payloads at least
    assert (mine["docs"].dim, mine["docs"].distance) == (DIM, "Cosine")
    assert mine["empty"].points == 0
    assert mine["empty"].disk_bytes < mine["docs"].disk_bytes
    every = collection_usage(db, data_dir)
    assert sorted((u.tenant_id, u.name) for u in every) == [(A, "docs"), (A, "empty"), (B, "docs")]
