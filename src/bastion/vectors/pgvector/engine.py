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

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import AsyncConnection, errors, sql
from psycopg.types.json import Json
from sqlalchemy import Connection

from bastion.clock import Clock, SystemClock
from bastion.config import Settings
from bastion.storage import Database, new_id
from bastion.vectors.aliases import drop_aliases_of
from bastion.vectors.audit import audited, created_details
from bastion.vectors.checks import (
    check_deletable,
    no_vector_left,
    prepare_rows,
    present,
    rows_of,
)
from bastion.vectors.engine import (
    CollectionInfo,
    CollectionSpec,
    HnswParams,
    OrderBy,
    PayloadSelector,
    PointRecord,
    PointVectors,
    PointWrite,
    ScoredRecord,
    ScrollPage,
    SearchQuery,
    UpsertMode,
    Vector,
    VectorParams,
    WithVector,
)
from bastion.vectors.errors import (
    BadRequest,
    CollectionExists,
    CollectionNotFound,
    PointNotFound,
)
from bastion.vectors.filters import Filter, parse_key
from bastion.vectors.ids import key_to_id
from bastion.vectors.live import INDEXED_SCHEMAS, check_order_index
from bastion.vectors.payloads import PayloadChange
from bastion.vectors.pgvector import queries
from bastion.vectors.pgvector.adopt import adopt_collections
from bastion.vectors.pgvector.pool import Connections
from bastion.vectors.pgvector.rows import (
    heavy,
    off_loop_if,
    record,
    storable_payload,
)
from bastion.vectors.pgvector.search import Searches
from bastion.vectors.pgvector.server import conninfo, prepare_database
from bastion.vectors.pgvector.tables import (
    MAX_INDEXED_DIM,
    PgCollection,
    column_of,
    create_statements,
    drop_statement,
    payload_index_statement,
    table_name,
)
from bastion.vectors.pgvector.where import Where, compiled, jsonpath

log = logging.getLogger("bastion.vectors")
T = TypeVar("T")
_EXPORT_CHUNK = 1000
LOOKUP_SECONDS = 5.0  # how long a replica trusts the parameters it looked up


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
        self.pgvector_version: str | None = None
        self._connections = Connections(self.conninfo, pool_size)
        self._collections: dict[tuple[str, str], PgCollection] = {}
        self._looked_up: dict[str, float] = {}  # collection id -> when
        self._searches = Searches(self._connections)

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Check pgvector (≥ 0.8.0) and create the extension if needed; give collections
        written before this engine their vector tables (blocking; start-up)."""
        self.pgvector_version = prepare_database(self.conninfo)
        adopt_collections(self.conninfo)
        log.info("vectors: PostgreSQL with pgvector %s", self.pgvector_version)

    def close(self) -> None:
        """Close the connection pool (blocking; from any thread)."""
        self._connections.close()

    async def aclose(self) -> None:
        await self._connections.aclose()

    async def keep_up(self) -> None:
        """Nothing to catch up with: every replica reads the database itself."""

    def _connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        return self._connections.connection()

    # -- collections -------------------------------------------------------------------

    async def _lookup(self, tenant_id: str, name: str) -> PgCollection | None:
        if "\x00" in name:  # no collection has one (names are checked), and PostgreSQL
            return None  # refuses the character in a text parameter
        async with self._connection() as conn:
            cur = await conn.execute(queries.COLLECTION, (tenant_id, name))
            row = await cur.fetchone()
        if row is None:
            self._collections.pop((tenant_id, name), None)
            return None
        spec = CollectionSpec.stored(name, row[1], row[2], row[3])
        created = row[4].astimezone(UTC) if row[4] is not None else None
        found = PgCollection(row[0], tenant_id, table_name(row[0]), spec, created)
        self._collections[(tenant_id, name)] = found
        return found

    async def _get(self, tenant_id: str, name: str) -> PgCollection:
        found = self._collections.get((tenant_id, name))
        now = time.monotonic()
        if found is not None and now - self._looked_up.get(found.id, 0.0) > LOOKUP_SECONDS:
            found = None  # another replica may have changed its parameters (update_collection)
        if found is None:
            found = await self._lookup(tenant_id, name)
            if found is not None:
                self._looked_up[found.id] = now
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
                    path = _field_path(field)
                    counts.append(
                        sql.SQL(
                            "count(*) FILTER (WHERE jsonb_path_exists(payload, {}::jsonpath))"
                        ).format(where.bind(path))
                        if path is not None
                        else sql.SQL("0")
                    )
                named = [column_of(live.spec, params) for params in live.spec.named]
                counts += [sql.SQL("count({})").format(sql.Identifier(c)) for c in named]
                cur = await conn.execute(
                    sql.SQL("SELECT {} FROM {}").format(
                        sql.SQL(", ").join(counts), sql.Identifier(live.table)
                    ),
                    where.params,
                )
                row = await cur.fetchone()
            assert row is not None
            total = int(row[0])
            self._searches.remember(live.id, total)
            field_counts = row[1 : 1 + len(indexes)]
            vector_counts = row[1 + len(indexes) :]
            return CollectionInfo(
                spec=live.spec,
                points_count=total,
                indexed_vectors_count=sum(vector_counts) if vector_counts else total,
                payload_schema={
                    field: (schema, int(count))
                    for (field, schema), count in zip(indexes, field_counts, strict=True)
                },
                created_at=live.created_at,
            )

        return await self._on(tenant_id, name, work)

    # -- writes: one transaction holds the change and its audit event ------------------

    async def _write(self, work: Callable[[Connection, psycopg.Connection[Any]], T]) -> T:
        """``work(conn, driver)`` in one write transaction of the shared database (a
        thread): ``driver`` is psycopg's side of ``conn`` for the vector SQL, ``conn``
        records the audit event (``vectors.audit``); both commit together or neither."""

        def run() -> T:
            with self.db.begin() as conn:
                driver = conn.connection.driver_connection
                assert isinstance(driver, psycopg.Connection)
                if driver.adapters.types.get("vector") is None:
                    register_vector(driver)
                return work(conn, driver)

        return await anyio.to_thread.run_sync(run)

    async def collection_spec(self, tenant_id: str, name: str) -> CollectionSpec:
        return (await self._get(tenant_id, name)).spec

    async def create_collection(self, tenant_id: str, spec: CollectionSpec, *, actor: str) -> None:
        for params in spec.vectors:
            if params.dim > MAX_INDEXED_DIM:
                where = f"vectors.{params.name}" if spec.named else "vectors"
                raise BadRequest(
                    f"{where}.size must be at most {MAX_INDEXED_DIM} on PostgreSQL "
                    "(the largest vector pgvector's HNSW index holds)"
                )
        collection_id = new_id("col")
        table = table_name(collection_id)

        def work(conn: Connection, driver: psycopg.Connection[Any]) -> None:
            created_at = self.clock.now()
            try:
                driver.execute(
                    queries.INSERT_COLLECTION,
                    (
                        collection_id,
                        tenant_id,
                        spec.name,
                        spec.dim,
                        spec.distance,
                        Json(spec.config()),
                        created_at,
                    ),
                )
            except errors.UniqueViolation:
                raise CollectionExists(spec.name) from None
            for statement in create_statements(table, spec):
                driver.execute(statement)
            audited(conn, "collection.created", tenant_id, spec.name, actor, created_at,
                    **created_details(spec))  # fmt: skip

        await self._write(work)
        self._collections.pop((tenant_id, spec.name), None)

    async def delete_collection(self, tenant_id: str, name: str, *, actor: str) -> bool:
        self._collections.pop((tenant_id, name), None)

        if "\x00" in name:  # see ``_lookup``
            return False

        def work(conn: Connection, driver: psycopg.Connection[Any]) -> str | None:
            row = driver.execute(queries.DELETE_COLLECTION, (tenant_id, name)).fetchone()
            if row is None:
                return None
            driver.execute(queries.DELETE_PAYLOAD_INDEXES, (row[0],))
            driver.execute(drop_statement(table_name(row[0])))
            drop_aliases_of(conn, tenant_id, name)
            audited(conn, "collection.deleted", tenant_id, name, actor, self.clock.now())
            return str(row[0])

        deleted = await self._write(work)
        if deleted is None:
            return False
        self._searches.forget(deleted)
        return True

    async def update_collection(
        self, tenant_id: str, name: str, hnsw: HnswParams, *, actor: str
    ) -> None:
        def work(live: PgCollection) -> Awaitable[None]:
            def change(conn: Connection, driver: psycopg.Connection[Any]) -> None:
                config = live.spec.with_hnsw(hnsw).config()
                driver.execute(queries.UPDATE_CONFIG, (Json(config), live.id))
                audited(conn, "collection.updated", tenant_id, name, actor, self.clock.now(),
                        full_scan_threshold=hnsw.full_scan_threshold)  # fmt: skip

            return self._write(change)

        await self._on(tenant_id, name, work)
        self._collections.pop((tenant_id, name), None)

    async def create_payload_index(
        self, tenant_id: str, name: str, field_name: str, schema: str, *, actor: str
    ) -> None:
        def work(live: PgCollection) -> Awaitable[None]:
            def change(conn: Connection, driver: psycopg.Connection[Any]) -> None:
                driver.execute(queries.DELETE_PAYLOAD_INDEX, (live.id, field_name))
                driver.execute(queries.INSERT_PAYLOAD_INDEX, (live.id, field_name, schema))
                if schema in INDEXED_SCHEMAS:
                    driver.execute(payload_index_statement(live.table))
                audited(conn, "index.created", tenant_id, name, actor, self.clock.now(),
                        field=field_name, schema=schema)  # fmt: skip

            return self._write(change)

        await self._on(tenant_id, name, work)

    async def delete_payload_index(
        self, tenant_id: str, name: str, field_name: str, *, actor: str
    ) -> bool:
        if "\x00" in field_name:  # PostgreSQL cannot hold such a name: there is no index
            await self._get(tenant_id, name)  # (but a missing collection is still a 404)
            return False

        def work(live: PgCollection) -> Awaitable[bool]:
            def change(conn: Connection, driver: psycopg.Connection[Any]) -> bool:
                dropped = driver.execute(queries.DELETE_PAYLOAD_INDEX, (live.id, field_name))
                if not dropped.rowcount:
                    return False
                audited(conn, "index.deleted", tenant_id, name, actor, self.clock.now(),
                        field=field_name)  # fmt: skip
                return True

            return self._write(change)

        return await self._on(tenant_id, name, work)

    async def upsert(
        self,
        tenant_id: str,
        name: str,
        points: Sequence[PointWrite],
        point_vectors: PointVectors,
        *,
        actor: str,
        update_filter: Filter | None = None,
        mode: UpsertMode = "upsert",
    ) -> int:
        live = await self._get(tenant_id, name)
        keys = [point.key for point in points]
        if len(set(keys)) != len(keys):
            raise BadRequest("duplicate point ids in one batch")
        rows = prepare_rows(rows_of(point_vectors, live.spec, len(keys)), live.spec)
        payloads = [storable_payload(point.payload, index) for index, point in enumerate(points)]
        columns = _columns(live.spec, rows)

        where = Where()
        condition = None if update_filter is None else where.filter(update_filter)

        def work(live: PgCollection) -> Awaitable[int]:
            params = {**where.params, "k": keys, "p": payloads, **columns}
            names = tuple(column_of(live.spec, p) for p in live.spec.vectors)

            def change(conn: Connection, driver: psycopg.Connection[Any]) -> int:
                if condition is None and mode == "upsert":
                    written = len(keys)
                    driver.execute(queries.upsert(live.table, names), params)
                else:
                    statements = queries.conditional_upserts(live.table, mode, condition, names)
                    written = sum(
                        max(driver.execute(statement, params).rowcount, 0)
                        for statement in statements
                    )
                audited(conn, "points.upserted", tenant_id, name, actor, self.clock.now(),
                        count=written)  # fmt: skip
                return written

            return self._write(change)

        return await self._on(tenant_id, name, work)

    async def delete_points(
        self,
        tenant_id: str,
        name: str,
        *,
        keys: Sequence[str] | None = None,
        filter: Filter | None = None,
        actor: str,
    ) -> int:
        where = Where()
        if keys is not None:
            condition: sql.Composable = sql.SQL("point_id = ANY({}::text[])").format(
                where.bind(list(dict.fromkeys(keys)))
            )
        else:
            condition = await compiled(where, filter or Filter())

        def work(live: PgCollection) -> Awaitable[int]:
            statement = sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier(live.table), condition
            )

            def change(conn: Connection, driver: psycopg.Connection[Any]) -> int:
                deleted = max(driver.execute(statement, where.params).rowcount, 0)
                audited(conn, "points.deleted", tenant_id, name, actor, self.clock.now(),
                        count=deleted, by_filter=keys is None)  # fmt: skip
                return deleted

            return self._write(change)

        return await self._on(tenant_id, name, work)

    async def update_vectors(
        self,
        tenant_id: str,
        name: str,
        keys: Sequence[str],
        vectors: Sequence[Mapping[str, Vector]],
        *,
        actor: str,
        update_filter: Filter | None = None,
    ) -> int:
        live = await self._get(tenant_id, name)
        if len(set(keys)) != len(keys):
            raise BadRequest("duplicate point ids in one batch")
        rows = prepare_rows(rows_of(vectors, live.spec, len(keys)), live.spec)
        columns = _columns(live.spec, rows)
        where = Where()
        condition = None if update_filter is None else where.filter(update_filter)
        wanted = list(keys)

        def work(live: PgCollection) -> Awaitable[int]:
            names = tuple(column_of(live.spec, p) for p in live.spec.vectors)
            statement = queries.set_vectors(live.table, names, condition)
            params = {**where.params, "k": wanted, **columns}

            def change(conn: Connection, driver: psycopg.Connection[Any]) -> int:
                _all_exist(driver, live.table, wanted)
                written = max(driver.execute(statement, params).rowcount, 0)
                audited(conn, "points.vectors_updated", tenant_id, name, actor, self.clock.now(),
                        operation="update", count=written, by_filter=False)  # fmt: skip
                return written

            return self._write(change)

        return await self._on(tenant_id, name, work)

    async def delete_vectors(
        self,
        tenant_id: str,
        name: str,
        names: Sequence[str],
        *,
        keys: Sequence[str] | None = None,
        filter: Filter | None = None,
        actor: str,
    ) -> int:
        live = await self._get(tenant_id, name)
        removed = check_deletable(live.spec, names)
        where = Where()
        wanted = None if keys is None else list(dict.fromkeys(keys))
        if wanted is not None:
            condition: sql.Composable = sql.SQL("point_id = ANY({}::text[])").format(
                where.bind(wanted)
            )
        else:
            condition = await compiled(where, filter or Filter())

        def work(live: PgCollection) -> Awaitable[int]:
            columns = tuple(column_of(live.spec, params) for params in removed)
            statement = queries.clear_vectors(live.table, columns, condition)
            every = tuple(column_of(live.spec, params) for params in live.spec.named)

            def change(conn: Connection, driver: psycopg.Connection[Any]) -> int:
                if wanted is not None:
                    _all_exist(driver, live.table, wanted)
                cleared = max(driver.execute(statement, where.params).rowcount, 0)
                empty = driver.execute(
                    queries.vectorless(live.table, every, condition), where.params
                )
                found = empty.fetchone()
                if found is not None:  # raised in the transaction: nothing changes
                    raise BadRequest(no_vector_left(key_to_id(found[0])))
                audited(conn, "points.vectors_updated", tenant_id, name, actor, self.clock.now(),
                        operation="delete", count=cleared, by_filter=keys is None)  # fmt: skip
                return cleared

            return self._write(change)

        return await self._on(tenant_id, name, work)

    async def update_payload(
        self,
        tenant_id: str,
        name: str,
        change: PayloadChange,
        *,
        keys: Sequence[str] | None = None,
        filter: Filter | None = None,
        actor: str,
    ) -> int:
        where = Where()
        wanted = None if keys is None else list(dict.fromkeys(keys))
        if wanted is not None:
            condition: sql.Composable = sql.SQL("point_id = ANY({}::text[])").format(
                where.bind(wanted)
            )
        else:
            condition = where.filter(filter or Filter())

        def work(live: PgCollection) -> Awaitable[int]:
            select_rows = sql.SQL(
                "SELECT point_id, payload FROM {} WHERE {} ORDER BY point_id FOR UPDATE"
            ).format(sql.Identifier(live.table), condition)

            def change_rows(conn: Connection, driver: psycopg.Connection[Any]) -> int:
                rows = driver.execute(select_rows, where.params).fetchall()
                if wanted is not None and len(rows) < len(wanted):
                    found = {row[0] for row in rows}
                    missing = next(key for key in wanted if key not in found)
                    raise PointNotFound(key_to_id(missing))
                ids = [row[0] for row in rows]
                payloads = [
                    storable_payload(change.apply(row[1]), index) for index, row in enumerate(rows)
                ]
                if ids:
                    driver.execute(queries.set_payloads(live.table), {"k": ids, "p": payloads})
                audited(conn, "points.payload_updated", tenant_id, name, actor, self.clock.now(),
                        operation=change.operation, count=len(ids),
                        by_filter=keys is None)  # fmt: skip
                return len(ids)

            return self._write(change_rows)

        return await self._on(tenant_id, name, work)

    # -- reads -------------------------------------------------------------------------

    async def retrieve(
        self,
        tenant_id: str,
        name: str,
        keys: Sequence[str],
        *,
        with_payload: PayloadSelector,
        with_vector: WithVector,
    ) -> list[PointRecord]:
        wanted = list(dict.fromkeys(keys))

        async def work(live: PgCollection) -> list[PointRecord]:
            selected = live.spec.selected(with_vector)
            statement = sql.SQL("SELECT {} FROM {} WHERE point_id = ANY(%(k)s::text[])").format(
                queries.columns(with_payload.enabled, _selected_columns(live, selected)),
                sql.Identifier(live.table),
            )
            async with self._connection() as conn:
                cur = await conn.cursor(binary=True).execute(statement, {"k": wanted})
                rows = await cur.fetchall()

            def build() -> list[PointRecord]:
                found = {row[0]: record(row, with_payload, live.spec, selected) for row in rows}
                return [found[key] for key in wanted if key in found]

            return await off_loop_if(heavy(rows, selected), build)

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
        with_vector: WithVector,
    ) -> ScrollPage:
        where = Where()
        condition = await compiled(where, filter) if filter is not None else sql.SQL("TRUE")
        if offset_key is not None:
            condition = sql.SQL("{} AND point_id >= {}").format(condition, where.bind(offset_key))

        async def work(live: PgCollection) -> ScrollPage:
            selected = live.spec.selected(with_vector)
            statement = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY point_id LIMIT {}").format(
                queries.columns(with_payload.enabled, _selected_columns(live, selected)),
                sql.Identifier(live.table),
                condition,
                sql.Literal(limit + 1),
            )
            async with self._connection() as conn:
                cur = await conn.cursor(binary=True).execute(statement, where.params)
                rows = await cur.fetchall()
            records = await off_loop_if(
                heavy(rows, selected),
                lambda: [record(row, with_payload, live.spec, selected) for row in rows],
            )
            next_key = records[limit].key if len(records) > limit else None
            return ScrollPage(records[:limit], next_key)

        return await self._on(tenant_id, name, work)

    async def scroll_ordered(
        self,
        tenant_id: str,
        name: str,
        *,
        filter: Filter | None,
        order_by: OrderBy,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: WithVector,
    ) -> list[tuple[PointRecord, float]]:
        where = Where()
        condition = where.filter(filter) if filter is not None else sql.SQL("TRUE")
        path = jsonpath(parse_key(order_by.key))

        async def work(live: PgCollection) -> list[tuple[PointRecord, float]]:
            selected = live.spec.selected(with_vector)
            async with self._connection() as conn:
                cur = await conn.execute(queries.PAYLOAD_INDEX_SCHEMA, (live.id, order_by.key))
                row = await cur.fetchone()
            check_order_index(order_by, None if row is None else row[0])
            if path is None:
                return []
            params = {**where.params, "path": path, "start": order_by.start_from}
            statement = queries.ordered(
                live.table,
                payload=with_payload.enabled,
                vector=_selected_columns(live, selected),
                condition=condition,
                descending=order_by.descending,
                start=order_by.start_from is not None,
                limit=limit,
            )
            async with self._connection() as conn:
                cur = await conn.cursor(binary=True).execute(statement, params)
                rows = await cur.fetchall()
            return [
                (record(row[:-1], with_payload, live.spec, selected), float(row[-1]))
                for row in rows
            ]

        return await self._on(tenant_id, name, work)

    async def count(self, tenant_id: str, name: str, *, filter: Filter | None) -> int:
        where = Where()
        condition = await compiled(where, filter) if filter is not None else sql.SQL("TRUE")

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
                queries.columns(True, _selected_columns(live, live.spec.vectors)),
                sql.Identifier(live.table),
                sql.Literal(_EXPORT_CHUNK),
            )
            try:
                async with self._connection() as conn:
                    cur = await conn.cursor(binary=True).execute(statement, {"c": cursor})
                    rows = await cur.fetchall()
            except errors.UndefinedTable:
                self._collections.pop((tenant_id, name), None)
                raise CollectionNotFound(name) from None
            chunk = await off_loop_if(
                heavy(rows, live.spec.vectors), partial(_records, rows, everything, live)
            )
            for point in chunk:
                yield point
            if len(rows) < _EXPORT_CHUNK:
                return
            cursor = rows[-1][0]

    # -- search ------------------------------------------------------------------------

    async def search(self, tenant_id: str, name: str, query: SearchQuery) -> list[ScoredRecord]:
        live = await self._get(tenant_id, name)
        self._searches.check(live, query)
        return await self._on(tenant_id, name, lambda live: self._searches.run(live, query))


def _field_path(field: str) -> str | None:
    """The jsonpath of a payload index's field; None for a name stored before names were
    checked (``parse_index_field``), which then counts no points instead of failing
    ``GET /collections/{name}`` for everyone."""
    try:
        return jsonpath(parse_key(field))
    except BadRequest:
        return None


def _records(rows: list[Any], selector: PayloadSelector, live: PgCollection) -> list[PointRecord]:
    return [record(row, selector, live.spec, live.spec.vectors) for row in rows]


def _all_exist(driver: psycopg.Connection[Any], table: str, keys: list[str]) -> None:
    """Every point ``keys`` names exists (locked for the transaction), else the first
    missing one is a 404 and nothing changes."""
    statement = sql.SQL(
        "SELECT point_id FROM {} WHERE point_id = ANY(%s::text[]) ORDER BY point_id FOR UPDATE"
    ).format(sql.Identifier(table))
    found = {row[0] for row in driver.execute(statement, (keys,)).fetchall()}
    for key in keys:
        if key not in found:
            raise PointNotFound(key_to_id(key))


def _selected_columns(live: PgCollection, selected: tuple[VectorParams, ...]) -> tuple[str, ...]:
    return tuple(column_of(live.spec, params) for params in selected)


def _columns(spec: CollectionSpec, rows: Any) -> dict[str, list[Any]]:
    """An upsert's vectors as bind parameters, one list per vector column (``None``
    where a point lacks a named vector)."""
    if not spec.named:
        return {queries.vector_param(0): list(rows)}
    out: dict[str, list[Any]] = {}
    for index, params in enumerate(spec.named):
        there = present(rows, params).tolist()
        block = rows[:, params.offset : params.offset + params.dim]
        out[queries.vector_param(index)] = [
            np.ascontiguousarray(block[i]) if there[i] else None for i in range(len(rows))
        ]
    return out
