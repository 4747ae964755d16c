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
    VectorOut,
    VectorParams,
)
from bastion.vectors.errors import BadRequest
from bastion.vectors.live import EF_SCALE_POINTS, MAX_DEFAULT_EF, select_payload

T = TypeVar("T")


def default_ef(base: int, count: int) -> int:
    """The embedded engine's rule (``LiveCollection.default_ef``): ``base`` per 100,000
    points, at least ``base``, at most ``MAX_DEFAULT_EF``."""
    scaled = math.ceil(base * count / EF_SCALE_POINTS)
    return min(max(base, scaled), max(base, MAX_DEFAULT_EF))


def threshold_rows(spec: CollectionSpec | VectorParams) -> int:
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


def heavy(rows: list[Any], selected: tuple[VectorParams, ...]) -> bool:
    return len(rows) * (64 + sum(params.dim for params in selected)) > OFF_LOOP_WEIGHT


async def off_loop_if(heavy_work: bool, work: Callable[[], T]) -> T:
    """``work()``: in a worker thread when ``heavy_work``, else right here."""
    if heavy_work:
        return await anyio.to_thread.run_sync(work)
    return work()


def vectors_of(
    spec: CollectionSpec, values: Any, selected: tuple[VectorParams, ...]
) -> VectorOut | None:
    """The vector columns of a row (as ``queries.columns`` lists them) as answered: the
    unnamed vector as a list, named ones as ``{name: [...]}`` (those the point has)."""
    if not selected:
        return None
    if not spec.named:
        return values[0].to_list()  # type: ignore[no-any-return]
    return {
        params.name: value.to_list()
        for params, value in zip(selected, values, strict=True)
        if value is not None
    }


def record(
    row: Any, selector: PayloadSelector, spec: CollectionSpec, selected: tuple[VectorParams, ...]
) -> PointRecord:
    first = 2 if selector.enabled else 1
    payload = select_payload(row[1], selector) if selector.enabled else None
    return PointRecord(row[0], payload, vectors_of(spec, row[first:], selected))


def scored(
    rows: list[Any],
    query: SearchQuery,
    sign: float,
    distance: str,
    spec: CollectionSpec,
    selected: tuple[VectorParams, ...],
) -> list[ScoredRecord]:
    out: list[ScoredRecord] = []
    threshold = query.score_threshold
    euclid = distance == "Euclid"
    selector = query.with_payload
    first = 2 if selector.enabled else 1
    for row in rows[query.offset :]:
        score = sign * float(row[-1])
        if threshold is not None and (score > threshold if euclid else score < threshold):
            break
        payload = select_payload(row[1], selector) if selector.enabled else None
        vector = vectors_of(spec, row[first:-1], selected)
        out.append(ScoredRecord(row[0], score, payload, vector))
    return out[: query.limit]
