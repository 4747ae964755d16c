"""Qdrant's ``query`` (universal query API) and ``recommend`` bodies → a plan, and the pure
pieces that carry it out: the recommendation vector and MMR re-ranking.

A plan names its examples as vectors or point ids; the route looks the ids up (their
stored vectors), searches with the plan's vector, and leaves the example points out of
the results, as Qdrant does. Query kinds Bastion does not serve (``fusion``,
``discover``, ``context``, ``order_by``, ``formula``, ``sample``) are a 400 naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.vectors import fields
from bastion.vectors.engine import Distance, Vector
from bastion.vectors.errors import BadRequest
from bastion.vectors.ids import parse_point_id
from bastion.vectors.models import MAX_LIMIT, agree_using, named_vector_of

Example = Vector | str  # a vector, or a point's storage key
MAX_EXAMPLES = 256
STRATEGIES = ("average_vector", "best_score", "sum_scores")
# best_score / sum_scores: how many candidates each positive example brings (at least),
# to be scored by the strategy (see ``strategy_scores``).
MIN_CANDIDATES = 64


@dataclass(frozen=True)
class Mmr:
    diversity: float  # 0: relevance only … 1: diversity only (Qdrant's default 0.5)
    candidates: int | None  # how many nearest points are re-ranked (default: limit)


@dataclass(frozen=True)
class Plan:
    positive: tuple[Example, ...]  # nearest: one example; recommend: one or more
    negative: tuple[Example, ...] = ()
    mmr: Mmr | None = None
    using: str | None = None  # the vector name the examples were wrapped with, if any
    strategy: str = "average_vector"  # recommend's (Qdrant's default)

    def point_keys(self) -> list[str]:
        return [e for e in (*self.positive, *self.negative) if isinstance(e, str)]


def example_of(raw: Any, where: str) -> tuple[str | None, Example]:
    """A vector (a list, or a named form: with its name) or a point id (an integer or a
    UUID string)."""
    if isinstance(raw, int | str) and not isinstance(raw, bool):
        return None, parse_point_id(raw)
    return named_vector_of(raw, where)


def vector_plan(raw: Any, where: str, mmr: Mmr | None = None) -> Plan:
    """A plan of one example (a vector, or a point id)."""
    using, example = example_of(raw, where)
    return Plan((example,), mmr=mmr, using=using)


def _examples(raw: Any, where: str, using: str | None) -> tuple[tuple[Example, ...], str | None]:
    if raw is None:
        return (), using
    if not isinstance(raw, list) or len(raw) > MAX_EXAMPLES:
        raise BadRequest(f"{where} must be a list of at most {MAX_EXAMPLES} ids or vectors")
    examples: list[Example] = []
    for i, item in enumerate(raw):
        name, example = example_of(item, f"{where}[{i}]")
        using = agree_using(using, name, f"{where}[{i}]")
        examples.append(example)
    return tuple(examples), using


def recommend_plan(raw: Mapping[str, Any], allowed: Mapping[str, fields.Check]) -> Plan:
    """``{"positive", "negative", "strategy"}`` (the recommend route or query)."""
    fields.only(raw, allowed)
    strategy = raw.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise BadRequest(
            f"strategy={strategy!r} is not supported by Bastion: {', '.join(STRATEGIES)}"
        )
    positive, using = _examples(raw.get("positive"), "positive", None)
    if not positive:
        raise BadRequest("recommend needs at least one positive example")
    negative, using = _examples(raw.get("negative"), "negative", using)
    return Plan(positive, negative, using=using, strategy=strategy or "average_vector")


def query_plan(raw: Any) -> Plan | None:
    """The ``query`` of a query request (None: no query, the first points in id order)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return vector_plan(raw, "query")
    if set(raw) <= {"name", "vector"} or set(raw) == {"indices", "values"} or "" in raw:
        return vector_plan(raw, "query")
    if "recommend" in raw:
        fields.only(raw, fields.RECOMMEND_QUERY, "query")
        inner = raw["recommend"]
        if not isinstance(inner, dict):
            raise BadRequest("query.recommend must be an object")
        return recommend_plan(inner, fields.RECOMMEND_INPUT)
    if "nearest" not in raw:
        kind = next(iter(raw), "{}")
        raise BadRequest(f"query.{kind} is not supported by Bastion")
    fields.only(raw, fields.NEAREST_QUERY, "query")
    return vector_plan(raw["nearest"], "query.nearest", _mmr(raw.get("mmr")))


def _mmr(raw: Any) -> Mmr | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest("query.mmr must be an object")
    fields.only(raw, fields.MMR, "query.mmr")
    diversity = raw.get("diversity", 0.5)
    if diversity is None:
        diversity = 0.5
    if isinstance(diversity, bool) or not isinstance(diversity, int | float):
        raise BadRequest("query.mmr.diversity must be a number between 0 and 1")
    if not 0 <= diversity <= 1:
        raise BadRequest("query.mmr.diversity must be a number between 0 and 1")
    candidates = raw.get("candidates_limit")
    if candidates is not None and (
        isinstance(candidates, bool)
        or not isinstance(candidates, int)
        or not 1 <= candidates <= MAX_LIMIT
    ):
        raise BadRequest(f"query.mmr.candidates_limit must be between 1 and {MAX_LIMIT}")
    return Mmr(float(diversity), candidates)


def search_vector(positive: Sequence[Vector], negative: Sequence[Vector]) -> Vector:
    """Qdrant's ``average_vector``: avg(positive) + (avg(positive) - avg(negative)); the
    positive average alone without negatives."""
    average = np.mean(np.vstack(positive), axis=0)
    if negative:
        average = average + (average - np.mean(np.vstack(negative), axis=0))
    return np.asarray(average, dtype=np.float32)


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Qdrant's ``scaled_fast_sigmoid``: ``0.5 · (x / (1 + |x|) + 1)``, in (0, 1)."""
    return 0.5 * (x / (1.0 + np.abs(x)) + 1.0)


def strategy_scores(
    candidates: npt.NDArray[np.float32],
    positive: npt.NDArray[np.float32],
    negative: npt.NDArray[np.float32],
    *,
    distance: Distance,
    strategy: str,
) -> npt.NDArray[np.float64]:
    """Each candidate's score under recommend's ``best_score`` or ``sum_scores`` (Qdrant's
    ``RecoBestScoreQuery`` / ``RecoSumScoresQuery``), higher is better. Similarity is
    Qdrant's internal one: the dot product (Cosine vectors unit length), or minus the
    squared distance for Euclid.

    - ``best_score``: with ``p`` the best similarity to a positive and ``n`` to a
      negative (-inf without negatives), ``sigmoid(p)`` when ``p > n``, else ``-sigmoid(n)``;
    - ``sum_scores``: the similarities to the positives summed, minus those to the
      negatives."""
    to_positive = _internal(candidates, positive, distance)
    to_negative = (
        _internal(candidates, negative, distance)
        if len(negative)
        else np.full((len(candidates), 0), 0.0)
    )
    if strategy == "sum_scores":
        summed: npt.NDArray[np.float64] = to_positive.sum(axis=1) - to_negative.sum(axis=1)
        return summed
    best_positive = to_positive.max(axis=1)
    best_negative = to_negative.max(axis=1) if len(negative) else np.full(len(candidates), -np.inf)
    return np.where(
        best_positive > best_negative,
        _sigmoid(best_positive),
        -_sigmoid(np.where(np.isfinite(best_negative), best_negative, 0.0)),
    )


def _internal(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], distance: Distance
) -> npt.NDArray[np.float64]:
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    if distance == "Euclid":
        diff = wide_a[:, None, :] - wide_b[None, :, :]
        return -np.einsum("ijk,ijk->ij", diff, diff)  # type: ignore[no-any-return]
    product: npt.NDArray[np.float64] = wide_a @ wide_b.T
    return product


def similarity(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], distance: Distance) -> Any:
    """Pairwise similarity of rows, higher is closer: the dot product of the stored vectors
    (Cosine vectors are stored unit length), or minus the Euclidean distance."""
    if distance == "Euclid":
        diff = a[:, None, :] - b[None, :, :]
        return -np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return a @ b.T


def mmr_order(
    relevance: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    *,
    distance: Distance,
    diversity: float,
    count: int,
) -> list[tuple[int, float]]:
    """Maximal marginal relevance over candidates (their relevance to the query, higher is
    better, and their vectors): each step picks the candidate with the best
    ``(1 - diversity) * relevance - diversity * (its highest similarity to those picked)``.
    Returns (candidate index, that MMR score) in the order picked."""
    if len(relevance) == 0 or count <= 0:
        return []
    pairwise = similarity(vectors, vectors, distance)
    picked: list[tuple[int, float]] = []
    closest = np.full(len(relevance), -np.inf)
    left = np.ones(len(relevance), bool)
    for _ in range(min(count, len(relevance))):
        penalty = np.where(np.isfinite(closest), closest, 0.0) if picked else 0.0
        scores = (1 - diversity) * relevance - diversity * penalty
        scores = np.where(left, scores, -np.inf)
        best = int(np.argmax(scores))
        picked.append((best, float(scores[best])))
        left[best] = False
        closest = np.maximum(closest, pairwise[best])
    return picked
