"""Searches that arrive together are batched beside the event loop: same answers, and
writes still show at once."""

from __future__ import annotations

import asyncio

import numpy as np

from bastion.vectors import EmbeddedEngine, PointWrite, SearchQuery, key_to_id, parse_point_id
from tests.dataplane.conftest import ACTOR, run
from tests.dataplane.test_engine import DIM, A, ingest

N = 3_000
ENGINE_KINDS = ("embedded",)  # batching beside the event loop is the embedded engine's


def _queries(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=DIM).astype(np.float32) for _ in range(count)]


async def _answers(
    engine: EmbeddedEngine, queries: list[np.ndarray], *, together: bool
) -> list[list[tuple[object, float]]]:
    async def one(vector: np.ndarray) -> list[tuple[object, float]]:
        found = await engine.search(A, "docs", SearchQuery(vector=vector, limit=10))
        return [(key_to_id(hit.key), round(hit.score, 5)) for hit in found]

    if together:
        return list(await asyncio.gather(*(one(vector) for vector in queries)))
    return [await one(vector) for vector in queries]


def test_searches_that_arrive_together_get_the_answers_they_get_alone(
    engine: EmbeddedEngine,
) -> None:
    ingest(engine, N, exact_below_kib=0)  # always the graph
    queries = _queries(40)
    alone = run(_answers(engine, queries, together=False))
    assert engine._batcher.batches == 0  # one at a time: never handed off
    together = run(_answers(engine, queries, together=True))
    assert engine._batcher.batches >= 1
    assert together == alone
    assert all(len(found) == 10 for found in together)


def test_a_delete_shows_in_batched_searches_as_soon_as_it_returns(
    engine: EmbeddedEngine,
) -> None:
    data = ingest(engine, N, exact_below_kib=0)
    queries = [data[i] for i in range(0, 400, 10)]  # each query is a stored point

    async def scenario() -> list[list[tuple[object, float]]]:
        first = await _answers(engine, queries, together=True)
        assert all(found[0][0] == i for found, i in zip(first, range(0, 400, 10), strict=True))
        await engine.delete_points(
            A, "docs", keys=[parse_point_id(i) for i in range(0, 400, 10)], actor=ACTOR
        )
        return await _answers(engine, queries, together=True)

    after = run(scenario())
    gone = set(range(0, 400, 10))
    assert all(not gone & {point for point, _ in found} for found in after)


def test_searches_racing_writes_never_see_a_reused_slot_under_another_id(
    engine: EmbeddedEngine,
) -> None:
    data = ingest(engine, N, exact_below_kib=0)
    targets = list(range(100))

    async def scenario() -> list[list[tuple[object, float]]]:
        searches = [
            asyncio.ensure_future(_answers(engine, [data[i]], together=True)) for i in targets
        ]
        # Meanwhile: delete points and write new ones that take their slots.
        await engine.delete_points(
            A, "docs", keys=[parse_point_id(i) for i in range(50, 100)], actor=ACTOR
        )
        moved = [PointWrite(parse_point_id(N + i), None) for i in range(50)]
        await engine.upsert(A, "docs", moved, np.asarray(data[50:100]), actor=ACTOR)
        return [found[0] for found in await asyncio.gather(*searches)]

    unit = data / np.linalg.norm(data, axis=1, keepdims=True)

    def stored(point: int) -> np.ndarray:  # the vector a point id has (had) at any moment
        return unit[point - N + 50] if point >= N else unit[point]

    for index, found in zip(targets, run(scenario()), strict=True):
        assert len(found) == 10
        for point, score in found:
            # Every score is the score of the id it is reported with: a slot reused by
            # another point between the search and its answer would break this.
            assert isinstance(point, int)
            assert abs(float(stored(point) @ unit[index]) - score) < 1e-4, (index, point)
