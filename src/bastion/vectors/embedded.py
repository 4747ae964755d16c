"""The embedded engine: SQLite rows are the truth, ``LiveCollection`` mirrors them in memory.

A write validates, commits one SQLite transaction (WAL: it survives ``kill -9`` once
``COMMIT`` returns) holding the change and its audit event (``vectors.audit``), then
applies the same change to memory and the ANN index before it returns, so the next
search sees it. On start each collection is loaded from its rows;
the ANN index is loaded from the file saved at the last clean shutdown and caught up
with the rows written since (``points.version``), or rebuilt from the rows.

With several worker processes (``shared``), each holds its own copy in memory and
catches up with the others' writes before every call (``bastion.vectors.peers``).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import numpy as np
from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bastion.clock import Clock, SystemClock
from bastion.config import Settings
from bastion.storage import Database, new_id
from bastion.vectors.aliases import drop_aliases_of
from bastion.vectors.ann import AnnIndex
from bastion.vectors.audit import audited, created_details
from bastion.vectors.batching import SearchBatcher
from bastion.vectors.checks import (
    check_deletable,
    check_query,
    merge_rows,
    no_vector_left,
    present,
    rows_of,
    without_vectors,
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
from bastion.vectors.live import (
    LiveCollection,
    SlotPlan,
    check_order_index,
    new_ann,
    select_payload,
    vector_out,
)
from bastion.vectors.payloads import PayloadChange
from bastion.vectors.peers import ChangeWatch, bury, catch_up, clear_tombstones
from bastion.vectors.predicates import compile_filter, extract
from bastion.vectors.progress import progress
from bastion.vectors.schema import collections, payload_indexes, points

log = logging.getLogger("bastion.vectors")
T = TypeVar("T")
_CHUNK = 500  # ids per SQL IN (...) list
_BUILD_BATCH = 10_000


class EmbeddedEngine:
    """``VectorEngine`` on the shared ``Database`` plus ANN index files under ``data_dir``."""

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        shared: bool | None = None,
    ) -> None:
        self.db = db
        self.index_dir = Path(data_dir) / "vectors"
        self.settings = settings
        self.clock = clock or SystemClock()
        self._collections: dict[tuple[str, str], LiveCollection] = {}
        self._registry = threading.Lock()
        self._batcher = SearchBatcher()
        if shared is None:
            shared = settings is not None and settings.resolved_workers > 1
        self._shared = shared  # other worker processes write too
        self._watch: ChangeWatch | None = None  # their commits, from ``open`` on
        self._syncing: asyncio.Future[None] | None = None
        self._sync_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Load every collection: rows into memory, then the ANN index (blocking; start-up)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        if self._shared:  # before reading: a commit from here on is noticed
            self._watch = ChangeWatch(self.db)
        with self.db.read() as conn:
            rows = conn.execute(select(collections)).mappings().all()
            indexes = conn.execute(select(payload_indexes)).mappings().all()
        loaded: dict[tuple[str, str], LiveCollection] = {}
        for row in rows:
            live = self._loaded(row, indexes)
            loaded[(live.tenant_id, live.spec.name)] = live
        with self._registry:
            self._collections = loaded
        if not self._shared:  # with several workers another one may be creating files
            _remove_orphan_files(self.index_dir, {live.id for live in loaded.values()})

    @staticmethod
    def prepare_for_workers(db: Database, data_dir: Path) -> None:
        """Before the workers of ``bastion serve --workers N`` start (each loads the rows):
        forget the tombstones, and remove the index files of collections that no longer
        exist (a worker that had not caught up may have saved one at shutdown for a
        collection another worker deleted)."""
        clear_tombstones(db)
        with db.read() as conn:
            known = set(conn.execute(select(collections.c.id)).scalars())
        _remove_orphan_files(Path(data_dir) / "vectors", known)

    def _loaded(self, row: Any, indexes: Sequence[Any]) -> LiveCollection:
        live = _live_from_row(row)
        self._load_points(live)
        for index in indexes:
            if index["collection_id"] == live.id:
                live.add_payload_index(index["field"], index["schema"])
        return live

    def close(self) -> None:
        """Save every changed ANN index with its consistency marker (blocking; shutdown)."""
        with self._registry:
            live_collections = list(self._collections.values())
        with self._saving():
            for live in live_collections:
                with live.lock.write():
                    if live.dirty and live.count and not self._saved_since(live):
                        self._save_index(live)
        self._batcher.close()
        if self._watch is not None:
            self._watch.close()

    @contextmanager
    def _saving(self) -> Iterator[None]:
        """One process at a time writes index files (workers stop together)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with (self.index_dir / ".save.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _saved_since(self, live: LiveCollection) -> bool:
        """Another worker already saved this version (or a newer one) of the index."""
        if not self._shared:
            return False
        try:
            marker = json.loads(self._index_files(live.id, _first(live))[1].read_text())
            return bool(marker["version"] >= live.version)
        except (OSError, ValueError, KeyError):
            return False

    # -- other worker processes --------------------------------------------------------

    async def keep_up(self) -> None:
        """Take in what other workers committed, without waiting for a call to need it (the
        app does this every second): an idle worker does not make the first request after
        a bulk write elsewhere apply all of it. A no-op without other workers."""
        await self._fresh()

    async def _fresh(self) -> None:
        """Before a call reads or writes: take in what other workers committed since the
        last call (a no-op without other workers, ~3 µs when nothing changed)."""
        while self._watch is not None:
            if self._syncing is None:
                if not self._watch.changed():
                    return
                self._syncing = asyncio.ensure_future(self._sync_off_loop())
            syncing = self._syncing
            try:  # shielded: a caller that goes away does not cancel the others' catch-up
                await asyncio.shield(syncing)
            finally:
                if syncing.done() and self._syncing is syncing:
                    self._syncing = None
            # and ask again: something may have been committed while it ran

    async def _sync_off_loop(self) -> None:
        try:
            await _off_loop(self._sync)
        except Exception:
            if self._watch is not None:
                self._watch.ask_again()  # the next call tries again; this one fails
            log.exception("catching up with the other workers failed")
            raise

    def _sync(self) -> None:
        """Bring every collection in memory in step with the database (a thread)."""
        with self._sync_lock, self._registry:
            with self.db.read() as conn:
                rows = conn.execute(select(collections)).mappings().all()
                indexes = conn.execute(select(payload_indexes)).mappings().all()
            current: dict[tuple[str, str], LiveCollection] = {}
            for row in rows:
                live = self._collections.get((row["tenant_id"], row["name"]))
                if live is None or live.id != row["id"]:
                    live = self._loaded(row, indexes)  # created by another worker
                else:
                    self._catch_up(live, row["version"], indexes)
                    spec = _spec_of(row)  # changed by update_collection elsewhere
                    if spec != live.spec:
                        live.spec = spec
                current[(live.tenant_id, live.spec.name)] = live
            self._collections = current  # collections deleted elsewhere drop out

    def _catch_up(self, live: LiveCollection, version: int, indexes: Sequence[Any]) -> None:
        wanted = {i["field"]: i["schema"] for i in indexes if i["collection_id"] == live.id}
        missing = {f: s for f, s in wanted.items() if live.index_schema.get(f) != s}
        dropped = set(live.index_schema) - set(wanted)
        if version == live.version and not missing and not dropped:
            return  # most commits (audit, sessions) change no collection: searches go on
        with live.lock.write():
            with self.db.read() as conn:
                catch_up(conn, live)
            for field in dropped:
                live.remove_payload_index(field)
            for field, schema in missing.items():
                live.add_payload_index(field, schema)

    # -- collections -------------------------------------------------------------------

    def _get(self, tenant_id: str, name: str) -> LiveCollection:
        live = self._collections.get((tenant_id, name))
        if live is None:
            raise CollectionNotFound(name)
        return live

    async def list_collections(self, tenant_id: str) -> list[str]:
        await self._fresh()
        return sorted(name for tenant, name in list(self._collections) if tenant == tenant_id)

    async def collection_exists(self, tenant_id: str, name: str) -> bool:
        await self._fresh()
        return (tenant_id, name) in self._collections

    async def get_collection(self, tenant_id: str, name: str) -> CollectionInfo:
        await self._fresh()
        live = self._get(tenant_id, name)
        return await _off_loop(lambda: _info(live))

    async def collection_spec(self, tenant_id: str, name: str) -> CollectionSpec:
        await self._fresh()
        return self._get(tenant_id, name).spec

    async def create_collection(self, tenant_id: str, spec: CollectionSpec, *, actor: str) -> None:
        await self._fresh()
        await _off_loop(lambda: self._create(tenant_id, spec, actor))

    def _create(self, tenant_id: str, spec: CollectionSpec, actor: str) -> None:
        with self._registry:
            if (tenant_id, spec.name) in self._collections:
                raise CollectionExists(spec.name)
            collection_id = new_id("col")
            created_at = self.clock.now()
            with self.db.begin() as conn:
                try:
                    conn.execute(
                        insert(collections).values(
                            id=collection_id,
                            tenant_id=tenant_id,
                            name=spec.name,
                            dim=spec.dim,
                            distance=spec.distance,
                            config=spec.config(),
                            created_at=created_at,
                            version=0,
                        )
                    )
                except IntegrityError:  # created by another worker meanwhile
                    raise CollectionExists(spec.name) from None
                audited(conn, "collection.created", tenant_id, spec.name, actor, created_at,
                        **created_details(spec))  # fmt: skip
            self._collections[(tenant_id, spec.name)] = LiveCollection(
                id=collection_id, tenant_id=tenant_id, spec=spec, created_at=created_at
            )

    async def delete_collection(self, tenant_id: str, name: str, *, actor: str) -> bool:
        await self._fresh()
        return await _off_loop(lambda: self._delete_collection(tenant_id, name, actor))

    def _delete_collection(self, tenant_id: str, name: str, actor: str) -> bool:
        with self._registry:
            live = self._collections.get((tenant_id, name))
            if live is None:
                return False
            with live.lock.write(), self.db.begin() as conn:
                conn.execute(delete(points).where(points.c.collection_id == live.id))
                conn.execute(
                    delete(payload_indexes).where(payload_indexes.c.collection_id == live.id)
                )
                conn.execute(delete(collections).where(collections.c.id == live.id))
                drop_aliases_of(conn, tenant_id, name)
                audited(conn, "collection.deleted", tenant_id, name, actor, self.clock.now())
            del self._collections[(tenant_id, name)]
        for path in self.index_dir.glob(f"{live.id}.*"):
            path.unlink(missing_ok=True)
        return True

    async def update_collection(
        self, tenant_id: str, name: str, hnsw: HnswParams, *, actor: str
    ) -> None:
        await self._fresh()
        live = self._get(tenant_id, name)

        def work() -> None:
            with live.lock.write():
                self._check_alive(live)
                spec = live.spec.with_hnsw(hnsw)
                with self.db.begin() as conn:
                    conn.execute(
                        update(collections)
                        .where(collections.c.id == live.id)
                        .values(config=spec.config())
                    )
                    audited(conn, "collection.updated", tenant_id, name, actor, self.clock.now(),
                            full_scan_threshold=hnsw.full_scan_threshold)  # fmt: skip
                live.spec = spec

        await _off_loop(work)

    async def create_payload_index(
        self, tenant_id: str, name: str, field_name: str, schema: str, *, actor: str
    ) -> None:
        await self._fresh()
        live = self._get(tenant_id, name)

        def work() -> None:
            with live.lock.write():
                with self.db.begin() as conn:
                    conn.execute(
                        delete(payload_indexes).where(
                            payload_indexes.c.collection_id == live.id,
                            payload_indexes.c.field == field_name,
                        )
                    )
                    conn.execute(
                        insert(payload_indexes).values(
                            collection_id=live.id, field=field_name, schema=schema
                        )
                    )
                    audited(conn, "index.created", tenant_id, name, actor, self.clock.now(),
                            field=field_name, schema=schema)  # fmt: skip
                live.add_payload_index(field_name, schema)

        await _off_loop(work)

    async def delete_payload_index(
        self, tenant_id: str, name: str, field_name: str, *, actor: str
    ) -> bool:
        await self._fresh()
        live = self._get(tenant_id, name)

        def work() -> bool:
            with live.lock.write():
                self._check_alive(live)
                with self.db.begin() as conn:
                    dropped = conn.execute(
                        delete(payload_indexes).where(
                            payload_indexes.c.collection_id == live.id,
                            payload_indexes.c.field == field_name,
                        )
                    ).rowcount
                    if dropped:
                        audited(conn, "index.deleted", tenant_id, name, actor, self.clock.now(),
                                field=field_name)  # fmt: skip
                live.remove_payload_index(field_name)
                return bool(dropped)

        return await _off_loop(work)

    # -- writes ------------------------------------------------------------------------

    async def upsert(
        self,
        tenant_id: str,
        name: str,
        points_: Sequence[PointWrite],
        point_vectors: PointVectors,
        *,
        actor: str,
        update_filter: Filter | None = None,
        mode: UpsertMode = "upsert",
    ) -> int:
        await self._fresh()
        live = self._get(tenant_id, name)
        keys = [point.key for point in points_]
        if len(set(keys)) != len(keys):
            raise BadRequest("duplicate point ids in one batch")
        vectors = rows_of(point_vectors, live.spec, len(keys))
        payloads = [point.payload for point in points_]
        keep = _UpsertRule(update_filter, mode)
        return await _off_loop(lambda: self._upsert(live, keys, vectors, payloads, actor, keep))

    def _upsert(
        self,
        live: LiveCollection,
        keys: list[str],
        vectors: Vector,
        payloads: list[dict[str, Any] | None],
        actor: str,
        keep: _UpsertRule,
    ) -> int:
        stored = live.prepare(vectors)
        blobs = [row.tobytes() for row in stored]
        with live.lock.write():
            self._check_alive(live)
            with self.db.begin() as conn:
                self._catch_up_writer(conn, live)
                if not keep.everything:
                    chosen = [i for i, key in enumerate(keys) if keep.writes(live, key)]
                    keys = [keys[i] for i in chosen]
                    blobs = [blobs[i] for i in chosen]
                    payloads = [payloads[i] for i in chosen]
                    stored = stored[chosen]
                    if not keys:
                        audited(conn, "points.upserted", live.tenant_id, live.spec.name, actor,
                                self.clock.now(), count=0)  # fmt: skip
                        return 0
                plan: SlotPlan = live.plan_slots(keys)
                version = live.version + 1
                slots = plan.slots.tolist()
                new_rows: list[dict[str, Any]] = []
                old_rows: list[dict[str, Any]] = []
                for key, slot, blob, payload in zip(keys, slots, blobs, payloads, strict=True):
                    row = {"k": key, "seq": slot, "v": blob, "p": payload, "n": version}
                    (old_rows if key in live.slot_of else new_rows).append(row)
                self._bump(conn, live, version)
                if old_rows:
                    conn.execute(
                        update(points)
                        .where(
                            points.c.collection_id == live.id,
                            points.c.point_id == _bind("k"),
                        )
                        .values(
                            vector=_bind("v"),
                            payload=_bind("p"),
                            version=_bind("n"),
                        ),
                        old_rows,
                    )
                if new_rows:
                    conn.execute(
                        insert(points),
                        [
                            {
                                "collection_id": live.id,
                                "point_id": row["k"],
                                "seq": row["seq"],
                                "vector": row["v"],
                                "payload": row["p"],
                                "version": version,
                            }
                            for row in new_rows
                        ],
                    )
                audited(conn, "points.upserted", live.tenant_id, live.spec.name, actor,
                        self.clock.now(), count=len(keys))  # fmt: skip
            live.version = version
            live.apply_upsert(keys, plan, stored, payloads)
        return len(keys)

    async def delete_points(
        self,
        tenant_id: str,
        name: str,
        *,
        keys: Sequence[str] | None = None,
        filter: Filter | None = None,
        actor: str,
    ) -> int:
        await self._fresh()
        live = self._get(tenant_id, name)

        def work() -> int:
            with live.lock.write():
                self._check_alive(live)
                with self.db.begin() as conn:
                    self._catch_up_writer(conn, live)
                    if keys is not None:
                        slots = [
                            live.slot_of[key] for key in dict.fromkeys(keys) if key in live.slot_of
                        ]
                        found = np.asarray(slots, dtype=np.int64)
                    else:
                        found = live.matching_slots(filter)
                    audited(conn, "points.deleted", tenant_id, name, actor, self.clock.now(),
                            count=len(found), by_filter=keys is None)  # fmt: skip
                    if len(found) == 0:
                        return 0
                    doomed = [str(live.keys[slot]) for slot in found.tolist()]
                    version = live.version + 1
                    self._bump(conn, live, version)
                    for start in range(0, len(doomed), _CHUNK):
                        conn.execute(
                            delete(points).where(
                                points.c.collection_id == live.id,
                                points.c.point_id.in_(doomed[start : start + _CHUNK]),
                            )
                        )
                    if self._watch is not None:
                        bury(conn, live.id, doomed, version)
                live.version = version
                live.apply_delete(found)
                return len(found)

        return await _off_loop(work)

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
        await self._fresh()
        live = self._get(tenant_id, name)
        if len(set(keys)) != len(keys):
            raise BadRequest("duplicate point ids in one batch")
        given = live.prepare(rows_of(vectors, live.spec, len(keys)))
        names = [list(point) for point in vectors]
        predicate = compile_filter(update_filter) if update_filter is not None else None

        def work() -> int:
            with live.lock.write():
                self._check_alive(live)
                with self.db.begin() as conn:
                    self._catch_up_writer(conn, live)
                    for key in keys:
                        if key not in live.slot_of:
                            raise PointNotFound(key_to_id(key))
                    chosen = [
                        i
                        for i, key in enumerate(keys)
                        if predicate is None
                        or predicate(key, live.payloads[live.slot_of[key]] or {})
                    ]
                    audited(conn, "points.vectors_updated", tenant_id, name, actor,
                            self.clock.now(), operation="update", count=len(chosen),
                            by_filter=False)  # fmt: skip
                    if not chosen:
                        return 0
                    slots = np.asarray([live.slot_of[keys[i]] for i in chosen], np.int64)
                    rows = merge_rows(
                        live.spec, live.vectors[slots], given[chosen], [names[i] for i in chosen]
                    )
                    self._rewrite(conn, live, slots, rows)
                return len(chosen)

        return await _off_loop(work)

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
        await self._fresh()
        live = self._get(tenant_id, name)
        removed = check_deletable(live.spec, names)

        def work() -> int:
            with live.lock.write():
                self._check_alive(live)
                with self.db.begin() as conn:
                    self._catch_up_writer(conn, live)
                    if keys is not None:
                        for key in keys:
                            if key not in live.slot_of:
                                raise PointNotFound(key_to_id(key))
                        found = [live.slot_of[key] for key in dict.fromkeys(keys)]
                        slots = np.asarray(found, np.int64)
                    else:
                        slots = live.matching_slots(filter)
                    audited(conn, "points.vectors_updated", tenant_id, name, actor,
                            self.clock.now(), operation="delete", count=len(slots),
                            by_filter=keys is None)  # fmt: skip
                    if len(slots) == 0:
                        return 0
                    rows, empty = without_vectors(live.spec, live.vectors[slots], removed)
                    if empty is not None:
                        point = key_to_id(str(live.keys[int(slots[empty])]))
                        raise BadRequest(no_vector_left(point))
                    self._rewrite(conn, live, slots, rows)
                return len(slots)

        return await _off_loop(work)

    def _rewrite(self, conn: Connection, live: LiveCollection, slots: Any, rows: Vector) -> None:
        """Store new vectors (whole stored rows) of existing points, in the caller's write
        transaction, and mirror them in memory and the ANN indexes (payloads stay)."""
        version = live.version + 1
        self._bump(conn, live, version)
        point_keys = [str(live.keys[slot]) for slot in slots.tolist()]
        conn.execute(
            update(points)
            .where(points.c.collection_id == live.id, points.c.point_id == _bind("k"))
            .values(vector=_bind("v"), version=_bind("n")),
            [
                {"k": key, "v": row.tobytes(), "n": version}
                for key, row in zip(point_keys, rows, strict=True)
            ],
        )
        live.version = version
        payloads = [live.payloads[slot] for slot in slots.tolist()]
        live.apply_upsert(point_keys, SlotPlan(slots, 0, len(live.keys)), rows, payloads)

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
        await self._fresh()
        live = self._get(tenant_id, name)

        def work() -> int:
            with live.lock.write():
                self._check_alive(live)
                with self.db.begin() as conn:
                    self._catch_up_writer(conn, live)
                    if keys is not None:
                        for key in keys:
                            if key not in live.slot_of:
                                raise PointNotFound(key_to_id(key))
                        slots = [live.slot_of[key] for key in dict.fromkeys(keys)]
                    else:
                        slots = live.matching_slots(filter).tolist()
                    changed = [change.apply(live.payloads[slot]) for slot in slots]
                    audited(conn, "points.payload_updated", tenant_id, name, actor,
                            self.clock.now(), operation=change.operation, count=len(slots),
                            by_filter=keys is None)  # fmt: skip
                    if not slots:
                        return 0
                    version = live.version + 1
                    self._bump(conn, live, version)
                    conn.execute(
                        update(points)
                        .where(
                            points.c.collection_id == live.id,
                            points.c.point_id == _bind("k"),
                        )
                        .values(payload=_bind("p"), version=_bind("n")),
                        [
                            {"k": live.keys[slot], "p": payload, "n": version}
                            for slot, payload in zip(slots, changed, strict=True)
                        ],
                    )
                live.version = version
                live.apply_payloads(slots, changed)
                return len(slots)

        return await _off_loop(work)

    def _catch_up_writer(self, conn: Connection, live: LiveCollection) -> None:
        """Inside the write transaction (which holds SQLite's write lock): the others'
        writes first, so the slots this write picks agree with what they hold."""
        if self._watch is not None:
            catch_up(conn, live)

    def _bump(self, conn: Connection, live: LiveCollection, version: int) -> None:
        conn.execute(update(collections).where(collections.c.id == live.id).values(version=version))

    def _check_alive(self, live: LiveCollection) -> None:
        if self._collections.get((live.tenant_id, live.spec.name)) is not live:
            raise CollectionNotFound(live.spec.name)

    # -- reads -------------------------------------------------------------------------

    async def search(self, tenant_id: str, name: str, query: SearchQuery) -> list[ScoredRecord]:
        if self._watch is not None:
            await self._fresh()
        live = self._get(tenant_id, name)
        check_query(query.vector, live.spec.vector(query.using))
        live.spec.selected(query.with_vector)  # a vector the collection lacks: a 400
        plain = live.plain_ann(query)
        if plain is not None:  # the graph alone answers: batched with its neighbours
            vector, breadth = plain
            hits = await self._batcher.search(live, vector, breadth, query.using)
            if live.lock.try_acquire_read():
                try:
                    if hits is not None and live.version == hits.version:  # no write since
                        return live.finish_ann(hits.labels, hits.distances, query)
                    # Alone, or a write landed since the batch ran: search right here.
                    ann = live.anns[query.using]
                    labels, raw = ann.search(vector, query.offset + query.limit, ef=breadth)
                    return live.finish_ann(labels, raw, query)
                finally:
                    live.lock.release_read()
        # A cheap plan runs right here: a thread hop costs more CPU than a search. Any
        # other (a filter over many points, a long exact scan) runs in a worker thread:
        # on the loop it would stall every other request meanwhile.
        if live.is_cheap(query) and live.lock.try_acquire_read():
            try:
                return live.search(query)
            finally:
                live.lock.release_read()
        return await _off_loop(lambda: _reading(live, lambda: live.search(query)))

    async def count(self, tenant_id: str, name: str, *, filter: Filter | None) -> int:
        await self._fresh()
        live = self._get(tenant_id, name)
        if filter is None:
            return live.count
        return await _off_loop(lambda: _reading(live, lambda: len(live.matching_slots(filter))))

    async def retrieve(
        self,
        tenant_id: str,
        name: str,
        keys: Sequence[str],
        *,
        with_payload: PayloadSelector,
        with_vector: WithVector,
    ) -> list[PointRecord]:
        await self._fresh()
        live = self._get(tenant_id, name)
        live.spec.selected(with_vector)  # a vector the collection lacks: a 400
        return await _off_loop(
            lambda: _reading(live, lambda: live.retrieve(keys, with_payload, with_vector))
        )

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
        await self._fresh()
        live = self._get(tenant_id, name)
        selected = live.spec.selected(with_vector)  # a vector the collection lacks: a 400

        def work() -> ScrollPage:
            predicate = compile_filter(filter) if filter is not None else None
            found: list[PointRecord] = []
            cursor = offset_key
            inclusive = True
            chunk = max(limit + 1, 256)
            with self.db.read() as conn:
                while len(found) <= limit:
                    rows = self._rows_after(conn, live.id, cursor, inclusive, chunk, bool(selected))
                    for row in rows:
                        payload = row.payload
                        if predicate is None or predicate(row.point_id, payload or {}):
                            found.append(_record(live.spec, row, payload, with_payload, selected))
                    if len(rows) < chunk:
                        break
                    cursor, inclusive = rows[-1].point_id, False
            next_key = found[limit].key if len(found) > limit else None
            return ScrollPage(found[:limit], next_key)

        return await _off_loop(work)

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
        await self._fresh()
        live = self._get(tenant_id, name)
        live.spec.selected(with_vector)  # a vector the collection lacks: a 400
        check_order_index(order_by, live.index_schema.get(order_by.key))
        path = parse_key(order_by.key)
        start = order_by.start_from

        def work() -> list[tuple[PointRecord, float]]:
            entries: list[tuple[float, str, int]] = []
            for slot in live.matching_slots(filter).tolist():
                key = live.keys[slot]
                for value in extract(live.payloads[slot] or {}, path):
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        continue
                    if start is not None and (
                        value > start if order_by.descending else value < start
                    ):
                        continue
                    entries.append((float(value), key or "", slot))
            if order_by.descending:
                entries.sort(key=lambda entry: (-entry[0], entry[1]))
            else:
                entries.sort()
            return [
                (live.record(slot, with_payload, with_vector), value)
                for value, _key, slot in entries[:limit]
            ]

        return await _off_loop(lambda: _reading(live, work))

    def _rows_after(
        self,
        conn: Connection,
        collection_id: str,
        cursor: str | None,
        inclusive: bool,
        chunk: int,
        with_vector: WithVector,
    ) -> list[Any]:
        columns = [points.c.point_id, points.c.payload]
        if with_vector:
            columns.append(points.c.vector)
        query = select(*columns).where(points.c.collection_id == collection_id)
        if cursor is not None:
            query = query.where(
                points.c.point_id >= cursor if inclusive else points.c.point_id > cursor
            )
        return list(conn.execute(query.order_by(points.c.point_id).limit(chunk)).all())

    async def export(self, tenant_id: str, name: str) -> AsyncIterator[PointRecord]:
        await self._fresh()
        live = self._get(tenant_id, name)
        cursor: str | None = None
        everything = PayloadSelector()
        while True:
            rows = await _off_loop(
                lambda c=cursor: self._export_chunk(live.id, c)  # type: ignore[misc]
            )
            for row in rows:
                yield _record(live.spec, row, row.payload, everything, live.spec.vectors)
            if len(rows) < 1000:
                return
            cursor = rows[-1].point_id

    def _export_chunk(self, collection_id: str, cursor: str | None) -> list[Any]:
        with self.db.read() as conn:
            return self._rows_after(conn, collection_id, cursor, False, 1000, True)

    # -- start-up: rows -> memory -> ANN ----------------------------------------------

    def _index_files(self, collection_id: str, index: int | None) -> tuple[Path, Path]:
        """The saved ANN index and its marker: ``col_….hnsw`` for the unnamed vector,
        ``col_….v<i>.hnsw`` for the i-th named vector."""
        stem = collection_id if index is None else f"{collection_id}.v{index}"
        return self.index_dir / f"{stem}.hnsw", self.index_dir / f"{stem}.json"

    def _load_points(self, live: LiveCollection) -> None:
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    points.c.point_id,
                    points.c.seq,
                    points.c.vector,
                    points.c.payload,
                    points.c.version,
                ).where(points.c.collection_id == live.id)
            )
            keys: list[str] = []
            slots: list[int] = []
            payloads: list[dict[str, Any] | None] = []
            versions: list[int] = []
            blobs: list[bytes] = []
            for row in rows:
                keys.append(row.point_id)
                slots.append(row.seq)
                payloads.append(row.payload)
                versions.append(row.version)
                blobs.append(row.vector)
        vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, live.spec.dim)
        slot_array = np.asarray(slots, dtype=np.int64)
        high = int(slot_array.max()) + 1 if len(slots) else 0
        plan = SlotPlan(slot_array, len(slots), high)
        live.apply_upsert(keys, plan, vectors, payloads, index=False)
        live.free = sorted(set(range(high)) - set(slots), reverse=True)
        version_array = np.asarray(versions, dtype=np.int64)
        caught_up = 0
        built = False
        for index, params in _numbered(live):
            if live.spec.named:
                there = present(vectors, params)
                own_slots, own_versions = slot_array[there], version_array[there]
                block = np.ascontiguousarray(
                    vectors[there, params.offset : params.offset + params.dim]
                )
            else:
                own_slots, own_versions, block = slot_array, version_array, vectors
            loaded = self._load_index(live, index, params, own_slots, own_versions, block)
            if loaded is None:
                self._build_index(live, params, own_slots, block, len(own_slots))
                built = built or len(own_slots) > 0
            else:
                caught_up += loaded
        live.dirty = built or caught_up > 0
        if caught_up:  # saved now, so that the next start (even after a crash) need not
            with self._saving():  # replay the same writes
                if not self._saved_since(live):
                    self._save_index(live)

    def _load_index(
        self,
        live: LiveCollection,
        index: int | None,
        params: VectorParams,
        slots: Any,
        versions: Any,
        vectors: Vector,
    ) -> int | None:
        """The saved index of one vector, caught up with the rows written since it was
        saved: how many it caught up with; None when there is none to load."""
        index_path, marker_path = self._index_files(live.id, index)
        try:
            marker = json.loads(marker_path.read_text())
            if marker["version"] > live.version or marker["dim"] != params.dim:
                return None
            ann = AnnIndex.load(
                index_path,
                dim=params.dim,
                distance=params.distance,
                m=params.hnsw.m,
                ef_construct=params.hnsw.ef_construct,
                capacity=len(live.keys),
                deleted=set(marker["deleted"]),
            )
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        changed = versions > marker["version"]
        ann.add(vectors[changed], slots[changed])
        # Labels without a row, not counting those already marked deleted (hnswlib still
        # lists them): those made every start report them as caught up again.
        stale = np.setdiff1d(np.setdiff1d(ann.labels(), slots), ann.deleted_labels())
        ann.delete(stale)
        live.anns[params.name] = ann
        caught_up = int(changed.sum()) + len(stale)
        log.info(
            "collection %s%s: loaded its saved index (%d points, %d caught up)",
            live.spec.name,
            f" (vector {params.name!r})" if live.spec.named else "",
            ann.live_count,
            caught_up,
        )
        return caught_up

    def _build_index(
        self, live: LiveCollection, params: VectorParams, slots: Any, vectors: Vector, total: int
    ) -> None:
        live.anns[params.name] = ann = new_ann(params, capacity=max(total, 1024))
        if total == 0:
            return
        with progress(f"indexing {live.spec.name}", total, enabled=total >= 50_000) as advance:
            for start in range(0, total, _BUILD_BATCH):
                end = min(start + _BUILD_BATCH, total)
                ann.add(vectors[start:end], slots[start:end])
                advance(end - start)

    def _save_index(self, live: LiveCollection) -> None:
        """Every vector's index with its marker (the first vector's marker last: it is
        the one ``_saved_since`` reads)."""
        for index, params in reversed(_numbered(live)):
            index_path, marker_path = self._index_files(live.id, index)
            ann = live.anns[params.name]
            ann.save(index_path)
            marker = {
                "version": live.version,
                "dim": params.dim,
                "deleted": ann.deleted_labels(),
            }
            temporary = marker_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(marker))
            temporary.replace(marker_path)
        live.dirty = False


def _numbered(live: LiveCollection) -> list[tuple[int | None, VectorParams]]:
    """Each vector with the number its index files carry (None: the unnamed vector)."""
    if not live.spec.named:
        return [(None, live.spec.vectors[0])]
    return list(enumerate(live.spec.named))


def _first(live: LiveCollection) -> int | None:
    return None if not live.spec.named else 0


class _UpsertRule:
    """Which points of an upsert are written (``update_filter``, ``update_mode``)."""

    def __init__(self, update_filter: Filter | None, mode: UpsertMode) -> None:
        self.mode = mode
        self.predicate = compile_filter(update_filter) if update_filter is not None else None
        self.everything = mode == "upsert" and update_filter is None

    def writes(self, live: LiveCollection, key: str) -> bool:
        slot = live.slot_of.get(key)
        if slot is None:
            return self.mode != "update_only"
        if self.mode == "insert_only":
            return False
        return self.predicate is None or self.predicate(key, live.payloads[slot] or {})


def _remove_orphan_files(index_dir: Path, known: set[str]) -> None:
    """Index files (``col_….hnsw`` / ``.json``) of collections not in ``known``."""
    for path in index_dir.glob("col_*"):
        if path.name.split(".", 1)[0] not in known:
            path.unlink(missing_ok=True)


def _spec_of(row: Any) -> CollectionSpec:
    return CollectionSpec.stored(row["name"], row["dim"], row["distance"], row["config"])


def _live_from_row(row: Any) -> LiveCollection:
    spec = _spec_of(row)
    live = LiveCollection(
        id=row["id"], tenant_id=row["tenant_id"], spec=spec, created_at=row["created_at"]
    )
    live.version = row["version"]
    return live


def _info(live: LiveCollection) -> CollectionInfo:
    with live.lock.read():
        counts = live.field_counts()
        return CollectionInfo(
            spec=live.spec,
            points_count=live.count,
            indexed_vectors_count=sum(ann.live_count for ann in live.anns.values()),
            payload_schema={
                field: (schema, counts.get(field, 0)) for field, schema in live.index_schema.items()
            },
            created_at=live.created_at,
        )


def _record(
    spec: CollectionSpec,
    row: Any,
    payload: dict[str, Any] | None,
    selector: PayloadSelector,
    selected: tuple[VectorParams, ...],
) -> PointRecord:
    vector = None
    if selected:
        vector = vector_out(spec, np.frombuffer(row.vector, dtype=np.float32), selected)
    return PointRecord(key=row.point_id, payload=select_payload(payload, selector), vector=vector)


def _bind(name: str) -> Any:
    return bindparam(name)


def _reading(live: LiveCollection, work: Callable[[], T]) -> T:
    with live.lock.read():
        return work()


async def _off_loop(work: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(work)
