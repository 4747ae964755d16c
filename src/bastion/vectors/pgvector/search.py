"""The pgvector engine's search: the plan (graph or exact), its statement, the breadth.

The point count behind the default breadth and the exact-below-threshold rule comes
from PostgreSQL's statistics, read at most every ``ESTIMATE_SECONDS`` per collection.
"""

from __future__ import annotations

import time
from typing import Any

from psycopg import sql

from bastion.vectors.checks import check_query
from bastion.vectors.engine import ScoredRecord, SearchQuery, Vector
from bastion.vectors.pgvector import queries
from bastion.vectors.pgvector.pool import Connections
from bastion.vectors.pgvector.rows import (
    default_ef,
    heavy,
    off_loop_if,
    prepare,
    scored,
    threshold_rows,
)
from bastion.vectors.pgvector.tables import METRICS, PgCollection, column_of
from bastion.vectors.pgvector.where import Where, compiled

MAX_EF_SEARCH = 1000  # pgvector's limit for hnsw.ef_search
ESTIMATE_SECONDS = 5.0  # how long a row-count estimate is trusted


class Searches:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._estimates: dict[str, tuple[int, float]] = {}

    def remember(self, collection_id: str, count: int) -> None:
        self._estimates[collection_id] = (count, time.monotonic())

    def forget(self, collection_id: str) -> None:
        self._estimates.pop(collection_id, None)

    def check(self, live: PgCollection, query: SearchQuery) -> None:
        check_query(query.vector, live.spec.vector(query.using))
        live.spec.selected(query.with_vector)  # a vector the collection lacks: a 400

    async def run(self, live: PgCollection, query: SearchQuery) -> list[ScoredRecord]:
        """The nearest points: by the graph, or exactly (small collection, ``exact``, or
        when the graph returned fewer rows than asked: never lose results silently)."""
        need = query.offset + query.limit
        if need <= 0:
            return []
        params = live.spec.vector(query.using)
        selected = live.spec.selected(query.with_vector)
        vector = prepare(query.vector[None, :], params.distance)[0]
        where = Where()
        condition = await compiled(where, query.filter) if query.filter is not None else None
        estimate = await self._estimate(live)
        exact = query.exact or estimate <= threshold_rows(params)
        rows = await self._nearest(live, vector, query, condition, where, need, exact, estimate)
        if not exact and len(rows) < need:
            rows = await self._nearest(live, vector, query, condition, where, need, True, 0)
        metric = METRICS[params.distance]
        return await off_loop_if(
            heavy(rows, selected),
            lambda: scored(rows, query, metric.sign, params.distance, live.spec, selected),
        )

    async def _nearest(
        self,
        live: PgCollection,
        vector: Vector,
        query: SearchQuery,
        condition: sql.Composable | None,
        where: Where,
        need: int,
        exact: bool,
        estimate: int,
    ) -> list[Any]:
        spec = live.spec
        searched = spec.vector(query.using)
        statement = queries.nearest(
            live.table,
            METRICS[searched.distance].operator,
            payload=query.with_payload.enabled,
            vector=tuple(column_of(spec, p) for p in spec.selected(query.with_vector)),
            condition=condition,
            exact=exact,
            column=column_of(spec, searched),
        )
        params: dict[str, Any] = {**where.params, "q": vector, "n": need}
        if not exact:
            ef = min(max(query.ef or default_ef(searched.hnsw.ef, estimate), need), MAX_EF_SEARCH)
            params.update(queries.search_settings(ef, need))
        async with self._connections.connection() as conn:
            cur = await conn.cursor(binary=True).execute(statement, params)
            return await cur.fetchall()

    async def _estimate(self, live: PgCollection) -> int:
        """About how many points the collection holds (refreshed every few seconds)."""
        known = self._estimates.get(live.id)
        now = time.monotonic()
        if known is not None and now - known[1] < ESTIMATE_SECONDS:
            return known[0]
        async with self._connections.connection() as conn:
            cur = await conn.execute(queries.ESTIMATE, (live.table,))
            row = await cur.fetchone()
        estimate = int(row[0] or 0) if row else 0
        self._estimates[live.id] = (estimate, now)
        return estimate
