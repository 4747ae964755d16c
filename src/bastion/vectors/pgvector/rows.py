"""The pgvector engine's pure pieces: stored vectors, payload checks, result records,
the search breadth."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import numpy as np
import orjson
from psycopg.types.json import Jsonb

from bastion.vectors.checks import unit_rows
from bastion.vectors.engine import (
    CollectionSpec,
    PayloadSelector,
    PointRecord,
    ScoredRecord,
    SearchQuery,
    Vector,
)
from bastion.vectors.errors import BadRequest
from bastion.vectors.live import EF_SCALE_POINTS, MAX_DEFAULT_EF, select_payload

T = TypeVar("T")


def default_ef(base: int, count: int) -> int:
    """The embedded engine's rule (``LiveCollection.default_ef``): ``base`` per 100,000
    points, at least ``base``, at most ``MAX_DEFAULT_EF``."""
    scaled = math.ceil(base * count / EF_SCALE_POINTS)
    return min(max(base, scaled), max(base, MAX_DEFAULT_EF))


def threshold_rows(spec: CollectionSpec) -> int:
    """Below this many points an exact scan answers (Qdrant's ``full_scan_threshold``)."""
    return spec.hnsw.full_scan_threshold * 1024 // (4 * spec.dim)


def prepare(vectors: Vector, distance: str) -> Vector:
    """The stored form: Cosine vectors unit-length (``vectors.checks``)."""
    if distance == "Cosine":
        return unit_rows(vectors)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def storable_payload(payload: dict[str, Any] | None, index: int) -> Jsonb:
    if payload and b"\\u0000" in orjson.dumps(payload):
        raise BadRequest(
            f"points[{index}].payload: PostgreSQL cannot store the character U+0000 "
            "in a key or a string"
        )
    return Jsonb(payload or {})


# Rows past this weight (rows x (64 + dimension if vectors are returned)) are turned into
# records in a worker thread: ``to_list`` of thousands of vectors takes tens of ms, which
# on the event loop would stall every other request meanwhile (issue 11, item 5).
OFF_LOOP_WEIGHT = 16_384


def heavy(rows: list[Any], with_vector: bool, dim: int) -> bool:
    return len(rows) * (64 + (dim if with_vector else 0)) > OFF_LOOP_WEIGHT


async def off_loop_if(heavy_work: bool, work: Callable[[], T]) -> T:
    """``work()``: in a worker thread when ``heavy_work``, else right here."""
    if heavy_work:
        return await anyio.to_thread.run_sync(work)
    return work()


def record(row: Any, selector: PayloadSelector, with_vector: bool) -> PointRecord:
    payload = select_payload(row[1], selector) if selector.enabled else None
    vector = row[-1].to_list() if with_vector else None
    return PointRecord(row[0], payload, vector)


def scored(rows: list[Any], query: SearchQuery, sign: float, distance: str) -> list[ScoredRecord]:
    out: list[ScoredRecord] = []
    threshold = query.score_threshold
    euclid = distance == "Euclid"
    selector, with_vector = query.with_payload, query.with_vector
    for row in rows[query.offset :]:
        score = sign * float(row[-1])
        if threshold is not None and (score > threshold if euclid else score < threshold):
            break
        payload = select_payload(row[1], selector) if selector.enabled else None
        vector = row[-2].to_list() if with_vector else None
        out.append(ScoredRecord(row[0], score, payload, vector))
    return out[: query.limit]
