"""Recommend's ``best_score`` and ``sum_scores`` strategies (Qdrant's), and the vectors a
query asks for once the points it answers are known: both engines serve them through
their plain search, so the data plane carries them out once for both."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from bastion.vectors import Distance, PayloadSelector, ScoredRecord, SearchQuery, VectorEngine
from bastion.vectors import models as body_models
from bastion.vectors.checks import unit_rows
from bastion.vectors.engine import VectorOut
from bastion.vectors.query_plan import MIN_CANDIDATES, strategy_scores

_NO_PAYLOAD = PayloadSelector(enabled=False)


async def by_strategy(
    engine: VectorEngine,
    tenant_id: str,
    name: str,
    query: SearchQuery,
    strategy: str,
    positive: list[Any],
    negative: list[Any],
    distance: Distance,
) -> list[ScoredRecord]:
    """Recommend's ``best_score`` / ``sum_scores``: the nearest points of each positive
    example (at least ``MIN_CANDIDATES``, 4 x (offset + limit), from the index, filters
    and all) are the candidates, each scored against every example by the strategy
    (``strategy_scores``), best first; ``score_threshold`` keeps scores at or above it."""
    need = query.offset + query.limit
    breadth = min(max(MIN_CANDIDATES, 4 * need), body_models.MAX_LIMIT)
    wide = dataclasses.replace(
        query, limit=breadth, offset=0, score_threshold=None, with_vector=(query.using,)
    )
    found: dict[str, ScoredRecord] = {}
    for example in positive:
        for point in await engine.search(
            tenant_id, name, dataclasses.replace(wide, vector=example)
        ):
            found.setdefault(point.key, point)
    if not found:
        return []
    hits = list(found.values())
    scores = strategy_scores(
        np.asarray([_vector(point.vector, query.using) for point in hits], np.float32),
        _examples(positive, distance),
        _examples(negative, distance),
        distance=distance,
        strategy=strategy,
    )
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].key))
    if query.score_threshold is not None:
        order = [i for i in order if scores[i] >= query.score_threshold]
    order = order[query.offset : need]
    vectors_of = await as_asked(engine, tenant_id, name, [hits[i].key for i in order], query)
    return [
        ScoredRecord(hits[i].key, float(scores[i]), hits[i].payload, vectors_of.get(hits[i].key))
        for i in order
    ]


def _vector(vector: VectorOut | None, using: str) -> Any:
    return vector.get(using) if isinstance(vector, dict) else vector


def _examples(vectors: list[Any], distance: Distance) -> Any:
    """Examples as stored vectors are: Cosine ones unit length."""
    if not vectors:
        return np.zeros((0, 0), np.float32)
    rows = np.vstack(vectors).astype(np.float32)
    return unit_rows(rows) if distance == "Cosine" else rows


async def as_asked(
    engine: VectorEngine, tenant_id: str, name: str, keys: list[str], query: SearchQuery
) -> dict[str, VectorOut | None]:
    """The vectors ``query.with_vector`` asks for, of the points ``keys`` (a search that
    needed the searched vector to rank asked for that one only)."""
    if not query.with_vector or not keys:
        return {}
    again = await engine.retrieve(
        tenant_id, name, keys, with_payload=_NO_PAYLOAD, with_vector=query.with_vector
    )
    return {point.key: point.vector for point in again}
