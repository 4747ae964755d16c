"""The pgvector engine: every point lives in PostgreSQL, every search runs there.

Nothing about a collection's points is kept in the process, so any number of Bastion
replicas can share one database: a write is one transaction, committed before it
returns, and every connection sees it from then on. The process keeps only what never
changes for the life of a collection (its id, dimension, distance), found again in the
database when the collection's table has gone (deleted, or deleted and made anew by
another replica), and a row-count estimate, refreshed every few seconds, that picks the
search breadth.

Queries run on psycopg's async pool on the event loop (no thread hop per search); a
search is one statement whose settings are ``SET LOCAL`` (``set_config(…, true)``),
never session-wide, so the engine works behind a transaction-mode pooler
(docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import orjson
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, errors, sql
from psycopg.types.json import Json, Jsonb, set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from bastion.clock import Clock, SystemClock
from bastion.config import Settings
from bastion.storage import Database, new_id
from bastion.vectors.engine import (
    CollectionInfo,
    CollectionSpec,
    HnswParams,
    PayloadSelector,
    PointRecord,
    PointWrite,
    ScoredRecord,
    ScrollPage,
    SearchQuery,
    Vector,
)
from bastion.vectors.errors import BadRequest, CollectionExists, CollectionNotFound
from bastion.vectors.filters import Filter, parse_key
from bastion.vectors.live import EF_SCALE_POINTS, INDEXED_SCHEMAS, MAX_DEFAULT_EF, select_payload
from bastion.vectors.pgvector import queries
from bastion.vectors.pgvector.adopt import adopt_collections
from bastion.vectors.pgvector.server import conninfo, prepare_database
from bastion.vectors.pgvector.tables import (
    MAX_INDEXED_DIM,
    METRICS,
    create_statements,
    drop_statement,
    payload_index_statement,
    table_name,
)
from bastion.vectors.pgvector.where import Where, jsonpath

log = logging.getLogger("bastion.vectors")
T = TypeVar("T")
MAX_EF_SEARCH = 1000  # pgvector's limit for hnsw.ef_search
ESTIMATE_SECONDS = 5.0  # how long a row-count estimate is trusted
_EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class PgCollection:
    id: str
    tenant_id: str
    table: str
    spec: CollectionSpec
    created_at: datetime | None


class PgVectorEngine:
    """``VectorEngine`` on PostgreSQL + pgvector (``BASTION_DATABASE_URL=postgresql…``)."""

    def __init__(
        self,
        db: Database,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        pool_size: int = 10,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.conninfo = conninfo(db.url)
        self.pool_size = pool_size
        self.pgvector_version: str | None = None
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._collections: dict[tuple[str, str], PgCollection] = {}
        self._estimates: dict[str, tuple[int, float]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Check pgvector (≥ 0.8.0) and create the extension if needed; give collections
        written before this engine their vector tables (blocking; start-up)."""
        self.pgvector_version = prepare_database(self.conninfo)
        adopt_collections(self.conninfo)
        log.info("vectors: PostgreSQL with pgvector %s", self.pgvector_version)

    def close(self) -> None:
        """Close the connection pool (blocking; from any thread)."""
        pool, loop = self._pool, self._loop
        self._pool = self._loop = None
        if pool is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # called on the pool's own loop: it cannot wait for itself
            loop.create_task(pool.close())
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(pool.close(), loop).result(30)
        else:
            loop.run_until_complete(pool.close())

    async def aclose(self) -> None:
        pool, self._pool, self._loop = self._pool, None, None
        if pool is not None:
            await pool.close()

    async def keep_up(self) -> None:
        """Nothing to catch up with: every replica reads the database itself."""

    async def _get_pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        if self._pool is None:
            self._loop = asyncio.get_running_loop()
            self._pool = AsyncConnectionPool(
                self.conninfo,
                min_size=1,
                max_size=self.pool_size,
                kwargs={"autocommit": True},
                configure=_configure,
                open=False,
                name="bastion-vectors",
            )
        await self._pool.open()
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            yield conn

    # -- collections -------------------------------------------------------------------

    async def _lookup(self, tenant_id: str, name: str) -> PgCollection | None:
        async with self._connection() as conn:
            cur = await conn.execute(queries.COLLECTION, (tenant_id, name))
            row = await cur.fetchone()
        if row is None:
            self._collections.pop((tenant_id, name), None)
            return None
        hnsw = HnswParams(**(row[3] or {}).get("hnsw", {}))
        spec = CollectionSpec(name=name, dim=row[1], distance=row[2], hnsw=hnsw)
        created = row[4].astimezone(UTC) if row[4] is not None else None
        found = PgCollection(row[0], tenant_id, table_name(row[0]), spec, created)
        self._collections[(tenant_id, name)] = found
        return found

    async def _get(self, tenant_id: str, name: str) -> PgCollection:
        found = self._collections.get((tenant_id, name))
        if found is None:
            found = await self._lookup(tenant_id, name)
        if found is None:
            raise CollectionNotFound(name)
        return found

    async def _on(
        self, tenant_id: str, name: str, work: Callable[[PgCollection], Awaitable[T]]
    ) -> T:
        """Run ``work`` on the collection; if its table has gone since it was looked up
        (deleted, perhaps made anew, by another replica), look it up again once."""
        found = await self._get(tenant_id, name)
        try:
            return await work(found)
        except (errors.UndefinedTable, errors.ForeignKeyViolation):
            self._collections.pop((tenant_id, name), None)
            fresh = await self._lookup(tenant_id, name)
            if fresh is None or fresh.id == found.id:
                raise CollectionNotFound(name) from None
            return await work(fresh)

    async def list_collections(self, tenant_id: str) -> list[str]:
        async with self._connection() as conn:
            cur = await conn.execute(queries.COLLECTION_NAMES, (tenant_id,))
            return sorted(row[0] for row in await cur.fetchall())

    async def collection_exists(self, tenant_id: str, name: str) -> bool:
        return await self._lookup(tenant_id, name) is not None

    async def get_collection(self, tenant_id: str, name: str) -> CollectionInfo:
        found = await self._lookup(tenant_id, name)
        if found is None:
            raise CollectionNotFound(name)

        async def work(live: PgCollection) -> CollectionInfo:
            async with self._connection() as conn:
                cur = await conn.execute(queries.PAYLOAD_INDEXES, (live.id,))
                indexes = [(row[0], row[1]) for row in await cur.fetchall()]
                where = Where()
                counts: list[sql.Composable] = [sql.SQL("count(*)")]
                for field, _schema in indexes:
                    path = jsonpath(parse_key(field))
                    counts.append(
                        sql.SQL(
                            "count(*) FILTER (WHERE jsonb_path_exists(payload, {}::jsonpath))"
                        ).format(where.bind(path))
                        if path is not None
                        else sql.SQL("0")
                    )
                cur = await conn.execute(
                    sql.SQL("SELECT {} FROM {}").format(
                        sql.SQL(", ").join(counts), sql.Identifier(live.table)
                    ),
                    where.params,
                )
                row = await cur.fetchone()
            assert row is not None
            total = int(row[0])
            self._estimates[live.id] = (total, time.monotonic())
            return CollectionInfo(
                spec=live.spec,
                points_count=total,
                indexed_vectors_count=total,
                payload_schema={
                    field: (schema, int(count))
                    for (field, schema), count in zip(indexes, row[1:], strict=True)
                },
                created_at=live.created_at,
            )

        return await self._on(tenant_id, name, work)

    async def create_collection(self, tenant_id: str, spec: CollectionSpec) -> None:
        if spec.dim > MAX_INDEXED_DIM:
            raise BadRequest(
                f"vectors.size must be at most {MAX_INDEXED_DIM} on PostgreSQL "
                "(the largest vector pgvector's HNSW index holds)"
            )
        collection_id = new_id("col")
        table = table_name(collection_id)
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(
                        queries.INSERT_COLLECTION,
                        (
                            collection_id,
                            tenant_id,
                            spec.name,
                            spec.dim,
                            spec.distance,
                            Json({"hnsw": asdict(spec.hnsw)}),
                            self.clock.now(),
                        ),
                    )
                    for statement in create_statements(table, spec):
                        await conn.execute(statement)
            except errors.UniqueViolation:
                raise CollectionExists(spec.name) from None
        self._collections.pop((tenant_id, spec.name), None)

    async def delete_collection(self, tenant_id: str, name: str) -> bool:
        self._collections.pop((tenant_id, name), None)
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(queries.DELETE_COLLECTION, (tenant_id, name))
            row = await cur.fetchone()
            if row is None:
                return False
            await conn.execute(queries.DELETE_PAYLOAD_INDEXES, (row[0],))
            await conn.execute(drop_statement(table_name(row[0])))
        self._estimates.pop(row[0], None)
        return True

    async def create_payload_index(
        self, tenant_id: str, name: str, field_name: str, schema: str
    ) -> None:
        async def work(live: PgCollection) -> None:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(queries.DELETE_PAYLOAD_INDEX, (live.id, field_name))
                await conn.execute(queries.INSERT_PAYLOAD_INDEX, (live.id, field_name, schema))
                if schema in INDEXED_SCHEMAS:
                    await conn.execute(payload_index_statement(live.table))

        await self._on(tenant_id, name, work)

    # -- writes ------------------------------------------------------------------------

    async def upsert(
        self, tenant_id: str, name: str, points: Sequence[PointWrite], vectors: Vector
    ) -> int:
        live = await self._get(tenant_id, name)
        keys = [point.key for point in points]
        if len(set(keys)) != len(keys):
            raise BadRequest("duplicate point ids in one batch")
        if vectors.ndim != 2 or vectors.shape != (len(keys), live.spec.dim):
            raise BadRequest(
                f"wrong vector dimension: expected {live.spec.dim}, "
                f"got {vectors.shape[-1] if vectors.ndim == 2 else 'a ragged batch'}"
            )
        if not np.isfinite(vectors).all():
            raise BadRequest("vectors must not contain NaN or infinity")
        payloads = [_storable_payload(point.payload, index) for index, point in enumerate(points)]
        stored = _prepare(vectors, live.spec.distance)

        async def work(live: PgCollection) -> int:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(
                    queries.upsert(live.table),
                    {"k": keys, "v": list(stored), "p": payloads},
                    binary=True,
                )
            return len(keys)

        return await self._on(tenant_id, name, work)

    async def delete_points(
        self,
        tenant_id: str,
        name: str,
        *,
        keys: Sequence[str] | None = None,
        filter: Filter | None = None,
    ) -> int:
        where = Where()
        if keys is not None:
            condition: sql.Composable = sql.SQL("point_id = ANY({}::text[])").format(
                where.bind(list(dict.fromkeys(keys)))
            )
        else:
            condition = where.filter(filter or Filter())

        async def work(live: PgCollection) -> int:
            statement = sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier(live.table), condition
            )
            async with self._connection() as conn, conn.transaction():
                cur = await conn.execute(statement, where.params)
                return max(cur.rowcount, 0)

        return await self._on(tenant_id, name, work)

    # -- reads -------------------------------------------------------------------------

    async def retrieve(
        self,
        tenant_id: str,
        name: str,
        keys: Sequence[str],
        *,
        with_payload: PayloadSelector,
        with_vector: bool,
    ) -> list[PointRecord]:
        wanted = list(dict.fromkeys(keys))

        async def work(live: PgCollection) -> list[PointRecord]:
            statement = sql.SQL("SELECT {} FROM {} WHERE point_id = ANY(%(k)s::text[])").format(
                queries.columns(with_payload.enabled, with_vector), sql.Identifier(live.table)
            )
            async with self._connection() as conn:
                cur = await conn.cursor(binary=True).execute(statement, {"k": wanted})
                rows = await cur.fetchall()
            found = {row[0]: _record(row, with_payload, with_vector) for row in rows}
            return [found[key] for key in wanted if key in found]

        return await self._on(tenant_id, name, work)

    async def scroll(
        self,
        tenant_id: str,
        name: str,
        *,
        filter: Filter | None,
        offset_key: str | None,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: bool,
    ) -> ScrollPage:
        where = Where()
        condition = where.filter(filter) if filter is not None else sql.SQL("TRUE")
        if offset_key is not None:
            condition = sql.SQL("{} AND point_id >= {}").format(condition, where.bind(offset_key))

        async def work(live: PgCollection) -> ScrollPage:
            statement = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY point_id LIMIT {}").format(
                queries.columns(with_payload.enabled, with_vector),
                sql.Identifier(live.table),
                condition,
                sql.Literal(limit + 1),
            )
            async with self._connection() as conn:
                cur = await conn.cursor(binary=True).execute(statement, where.params)
                rows = await cur.fetchall()
            records = [_record(row, with_payload, with_vector) for row in rows]
            next_key = records[limit].key if len(records) > limit else None
            return ScrollPage(records[:limit], next_key)

        return await self._on(tenant_id, name, work)

    async def count(self, tenant_id: str, name: str, *, filter: Filter | None) -> int:
        where = Where()
        condition = where.filter(filter) if filter is not None else sql.SQL("TRUE")

        async def work(live: PgCollection) -> int:
            statement = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                sql.Identifier(live.table), condition
            )
            async with self._connection() as conn:
                cur = await conn.execute(statement, where.params)
                row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._on(tenant_id, name, work)

    async def export(self, tenant_id: str, name: str) -> AsyncIterator[PointRecord]:
        live = await self._get(tenant_id, name)
        everything = PayloadSelector()
        cursor = ""  # every key sorts after the empty string
        while True:
            statement = sql.SQL(
                "SELECT {} FROM {} WHERE point_id > %(c)s ORDER BY point_id LIMIT {}"
            ).format(
                queries.columns(True, True), sql.Identifier(live.table), sql.Literal(_EXPORT_CHUNK)
            )
            try:
                async with self._connection() as conn:
                    cur = await conn.cursor(binary=True).execute(statement, {"c": cursor})
                    rows = await cur.fetchall()
            except errors.UndefinedTable:
                self._collections.pop((tenant_id, name), None)
                raise CollectionNotFound(name) from None
            for row in rows:
                yield _record(row, everything, True)
            if len(rows) < _EXPORT_CHUNK:
                return
            cursor = rows[-1][0]

    # -- search ------------------------------------------------------------------------

    async def search(self, tenant_id: str, name: str, query: SearchQuery) -> list[ScoredRecord]:
        live = await self._get(tenant_id, name)
        if query.vector.shape != (live.spec.dim,):
            raise BadRequest(
                f"wrong vector dimension: expected {live.spec.dim}, got {query.vector.shape[-1]}"
            )
        if not np.isfinite(query.vector).all():
            raise BadRequest("the query vector must not contain NaN or infinity")
        need = query.offset + query.limit
        if need <= 0:
            return []
        vector = _prepare(query.vector[None, :], live.spec.distance)[0]
        where = Where()
        condition = where.filter(query.filter) if query.filter is not None else None

        async def work(live: PgCollection) -> list[ScoredRecord]:
            estimate = await self._estimate(live)
            exact = query.exact or estimate <= _threshold_rows(live.spec)
            rows = await self._nearest(live, vector, query, condition, where, need, exact, estimate)
            if not exact and len(rows) < need:  # never lose results silently: ask exactly
                rows = await self._nearest(live, vector, query, condition, where, need, True, 0)
            return _scored(rows, query, METRICS[live.spec.distance].sign, live.spec.distance)

        return await self._on(tenant_id, name, work)

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
        statement = queries.nearest(
            live.table,
            METRICS[live.spec.distance].operator,
            payload=query.with_payload.enabled,
            vector=query.with_vector,
            condition=condition,
            exact=exact,
        )
        params: dict[str, Any] = {**where.params, "q": vector, "n": need}
        if not exact:
            ef = min(max(query.ef or default_ef(live.spec.hnsw.ef, estimate), need), MAX_EF_SEARCH)
            params.update(queries.search_settings(ef, need))
        async with self._connection() as conn:
            cur = await conn.cursor(binary=True).execute(statement, params)
            return await cur.fetchall()

    async def _estimate(self, live: PgCollection) -> int:
        """About how many points the collection holds (refreshed every few seconds)."""
        known = self._estimates.get(live.id)
        now = time.monotonic()
        if known is not None and now - known[1] < ESTIMATE_SECONDS:
            return known[0]
        async with self._connection() as conn:
            cur = await conn.execute(queries.ESTIMATE, (live.table,))
            row = await cur.fetchone()
        estimate = int(row[0] or 0) if row else 0
        self._estimates[live.id] = (estimate, now)
        return estimate


def default_ef(base: int, count: int) -> int:
    """The embedded engine's rule (``LiveCollection.default_ef``): ``base`` per 100,000
    points, at least ``base``, at most ``MAX_DEFAULT_EF``."""
    scaled = math.ceil(base * count / EF_SCALE_POINTS)
    return min(max(base, scaled), max(base, MAX_DEFAULT_EF))


def _threshold_rows(spec: CollectionSpec) -> int:
    """Below this many points an exact scan answers (Qdrant's ``full_scan_threshold``)."""
    return spec.hnsw.full_scan_threshold * 1024 // (4 * spec.dim)


def _prepare(vectors: Vector, distance: str) -> Vector:
    """The stored form: Cosine vectors unit-length (a zero vector stays zero)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if distance == "Cosine":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        vectors = (vectors / norms).astype(np.float32)
    return vectors


def _storable_payload(payload: dict[str, Any] | None, index: int) -> Jsonb:
    if payload and b"\\u0000" in orjson.dumps(payload):
        raise BadRequest(
            f"points[{index}].payload: PostgreSQL cannot store the character U+0000 "
            "in a key or a string"
        )
    return Jsonb(payload or {})


def _record(row: Any, selector: PayloadSelector, with_vector: bool) -> PointRecord:
    payload = select_payload(row[1], selector) if selector.enabled else None
    vector = row[-1].to_list() if with_vector else None
    return PointRecord(row[0], payload, vector)


def _scored(rows: list[Any], query: SearchQuery, sign: float, distance: str) -> list[ScoredRecord]:
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


async def _configure(conn: AsyncConnection[Any]) -> None:
    """Every new pooled connection: pgvector's types, orjson for jsonb."""
    await register_vector_async(conn)
    set_json_loads(orjson.loads, conn)
    set_json_dumps(orjson.dumps, conn)
