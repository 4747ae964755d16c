"""Several worker processes on one data folder: keeping each one's memory in step.

With ``workers`` > 1 every ``bastion serve`` worker process holds its own copy of each
collection in memory (points, payloads, the ANN index), so searches never cross a
process boundary. A write commits under SQLite's write lock (``BEGIN IMMEDIATE``, one
writer at a time across processes), bumps the collection's ``version``, and updates the
writing process's memory before it is acknowledged. The other processes catch up before
their next read or write:

- ``ChangeWatch.changed()``: SQLite's ``PRAGMA data_version`` on a private connection
  moves whenever any other connection, in any process, committed (~3 µs to ask). The
  engine asks before every call; only when it moved does it compare collection versions.
- ``catch_up``: applies what was committed since ``live.version``: rows with a newer
  ``version`` (inserts and updates) and ``point_tombstones`` newer than it (deletes leave
  no row behind). A writer catches up inside its own write transaction before it picks
  slots, so every process assigns slots from the same state and peers copy them.

A write acknowledged by one worker is therefore seen by any request that reaches another
worker after the acknowledgement. Tombstones are written only while several workers run;
``bastion serve`` clears them before the workers start (each loads the rows). So that a
long-running server does not keep one row per point ever deleted, a delete drops the
tombstones more than ``KEEP_TOMBSTONE_VERSIONS`` versions old and notes up to which
version it did (``collections.tombstones_dropped_through``). A copy that fell further
behind than that (every worker catches up once a second, so only one that could not for
a while) cannot trust the tombstones left, and compares its point ids with the table's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, delete, insert, select, update

from bastion.storage import Database
from bastion.vectors.errors import CollectionNotFound
from bastion.vectors.live import LiveCollection, SlotPlan
from bastion.vectors.schema import collections, point_tombstones, points

# Tombstones of this many most recent versions (write transactions) of a collection are
# kept; a copy further behind compares ids instead (one pass over the collection's ids).
KEEP_TOMBSTONE_VERSIONS = 1_000


class ChangeWatch:
    """Whether anything was committed to the SQLite database since the last ask."""

    def __init__(self, db: Database) -> None:
        path = db.engine.url.database
        if not db.is_sqlite or not path or path == ":memory:":
            raise ValueError("a change watch needs the embedded SQLite database file")
        self._connection = sqlite3.connect(path, check_same_thread=False, timeout=10)
        self._lock = threading.Lock()
        self._seen = self._data_version()

    def _data_version(self) -> int:
        with self._lock:
            return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def changed(self) -> bool:
        """True once per change: the next ask is False until someone commits again."""
        now = self._data_version()
        if now == self._seen:
            return False
        self._seen = now
        return True

    def ask_again(self) -> None:
        """The next ``changed()`` is True (a catch-up failed: try it again)."""
        self._seen = -1

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def catch_up(conn: Connection, live: LiveCollection) -> None:
    """Apply to ``live`` what other processes committed since ``live.version``.

    The caller holds ``live.lock.write()``. Raises ``CollectionNotFound`` when the
    collection was deleted meanwhile."""
    found = conn.execute(
        select(collections.c.version, collections.c.tombstones_dropped_through).where(
            collections.c.id == live.id
        )
    ).first()
    if found is None:
        raise CollectionNotFound(live.spec.name)
    version, dropped_through = found
    if version == live.version:
        return
    rows = conn.execute(
        select(points.c.point_id, points.c.seq, points.c.vector, points.c.payload).where(
            points.c.collection_id == live.id, points.c.version > live.version
        )
    ).all()
    stale = _deleted_since(conn, live, dropped_through)
    for row in rows:
        moved_from = live.slot_of.get(row.point_id)
        if moved_from is not None and moved_from != row.seq:
            stale.add(moved_from)  # deleted and written again elsewhere
        if row.seq < len(live.keys) and live.keys[row.seq] not in (None, row.point_id):
            stale.add(row.seq)  # its previous point was deleted
    if stale:
        live.apply_delete(np.asarray(sorted(stale), dtype=np.int64))
    if rows:
        slots = np.asarray([row.seq for row in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(row.vector for row in rows), dtype=np.float32)
        high = max(len(live.keys), int(slots.max()) + 1)
        live.apply_upsert(
            [row.point_id for row in rows],
            SlotPlan(slots, 0, high),
            vectors.reshape(len(rows), live.spec.dim),
            [row.payload for row in rows],
        )
    live.free = np.flatnonzero(~live.live[: len(live.keys)])[::-1].tolist()
    live.version = version


def _deleted_since(conn: Connection, live: LiveCollection, dropped_through: int) -> set[int]:
    """Slots of the points ``live`` holds that were deleted after ``live.version``."""
    if live.version >= dropped_through:  # every tombstone it needs is still there
        doomed = conn.execute(
            select(point_tombstones.c.point_id).where(
                point_tombstones.c.collection_id == live.id,
                point_tombstones.c.version > live.version,
            )
        ).scalars()
        return {live.slot_of[key] for key in doomed if key in live.slot_of}
    present = set(
        conn.execute(select(points.c.point_id).where(points.c.collection_id == live.id)).scalars()
    )
    return {slot for key, slot in live.slot_of.items() if key not in present}


def bury(conn: Connection, collection_id: str, keys: Sequence[str], version: int) -> None:
    """Record deleted points for the other processes (inside the delete's transaction),
    and drop the tombstones more than ``KEEP_TOMBSTONE_VERSIONS`` versions old."""
    conn.execute(
        insert(point_tombstones),
        [{"collection_id": collection_id, "point_id": key, "version": version} for key in keys],
    )
    horizon = version - KEEP_TOMBSTONE_VERSIONS
    if horizon <= 0:
        return
    dropped = conn.execute(
        delete(point_tombstones).where(
            point_tombstones.c.collection_id == collection_id,
            point_tombstones.c.version <= horizon,
        )
    ).rowcount
    if dropped:
        conn.execute(
            update(collections)
            .where(collections.c.id == collection_id)
            .values(tombstones_dropped_through=horizon)
        )


def clear_tombstones(db: Database) -> None:
    """Forget every tombstone: run before the workers start (each loads the rows)."""
    with db.begin() as conn:
        conn.execute(delete(point_tombstones))
