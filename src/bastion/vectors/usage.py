"""How big each collection is: its points and the bytes it takes on disk.

One blocking function over the database and the data folder, for whatever shows sizes
(``bastion collection list`` today; the console or the admin API can call it off the
event loop). It reads rows, never the engine's memory, so it works beside a running
server, on a stopped one, and from any replica.

- Embedded engine (SQLite): the vectors and payloads stored in the database plus the
  collection's ANN index files (``vectors/<id>.hnsw`` and its marker). SQLite's own page
  overhead is not counted, so the figure is what the collection holds, not what a
  ``VACUUM`` would give back.
- pgvector engine (PostgreSQL): ``pg_total_relation_size`` of the collection's table
  (its rows, TOAST and indexes, HNSW included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, literal_column, select, table, text

from bastion.storage import Database
from bastion.vectors.schema import collections, points

__all__ = ["CollectionUsage", "collection_usage"]

_COLLECTION_ID = re.compile(r"^col_[0-9a-f]{32}$")
_RELATION_SIZE = text("SELECT pg_total_relation_size(CAST(:name AS regclass))")


@dataclass(frozen=True)
class CollectionUsage:
    id: str
    tenant_id: str
    name: str
    dim: int
    distance: str
    points: int
    disk_bytes: int


def collection_usage(
    db: Database, data_dir: Path, *, tenant_id: str | None = None
) -> list[CollectionUsage]:
    """Every collection (of ``tenant_id``, or of every tenant), by tenant and name."""
    with db.read() as conn:
        if db.is_sqlite:
            return _embedded(conn, Path(data_dir) / "vectors", tenant_id)
        return _pgvector(conn, tenant_id)


def _embedded(conn: Connection, index_dir: Path, tenant_id: str | None) -> list[CollectionUsage]:
    stored = func.coalesce(
        func.sum(
            func.length(points.c.vector)
            + func.coalesce(func.length(literal_column("CAST(points.payload AS BLOB)")), 0)
        ),
        0,
    )
    statement = (
        select(
            collections.c.id,
            collections.c.tenant_id,
            collections.c.name,
            collections.c.dim,
            collections.c.distance,
            collections.c.config,
            func.count(points.c.point_id).label("points"),
            stored.label("stored"),
        )
        .select_from(collections.outerjoin(points, points.c.collection_id == collections.c.id))
        .group_by(collections.c.id)
        .order_by(collections.c.tenant_id, collections.c.name)
    )
    if tenant_id is not None:
        statement = statement.where(collections.c.tenant_id == tenant_id)
    return [
        CollectionUsage(
            id=row.id,
            tenant_id=row.tenant_id,
            name=row.name,
            dim=int(row.dim),
            distance=_distance(row.distance, row.config),
            points=int(row.points),
            disk_bytes=int(row.stored) + _index_bytes(index_dir, row.id),
        )
        for row in conn.execute(statement)
    ]


def _index_bytes(index_dir: Path, collection_id: str) -> int:
    total = 0
    for path in index_dir.glob(f"{collection_id}.*"):  # .hnsw / .json, .v<i>.… per vector
        try:
            total += path.stat().st_size
        except OSError:  # being replaced: nothing on disk to count
            continue
    return total


def _distance(distance: str, config: Any) -> str:
    """The distance, or for named vectors each vector's (``dim`` is then their sum)."""
    named = (config or {}).get("vectors") if isinstance(config, dict) else None
    if not named:
        return distance
    return ", ".join(f"{v['name']}: {v['size']} {v['distance']}" for v in named)


def _pgvector(conn: Connection, tenant_id: str | None) -> list[CollectionUsage]:
    statement = select(
        collections.c.id,
        collections.c.tenant_id,
        collections.c.name,
        collections.c.dim,
        collections.c.distance,
        collections.c.config,
    ).order_by(collections.c.tenant_id, collections.c.name)
    if tenant_id is not None:
        statement = statement.where(collections.c.tenant_id == tenant_id)
    found: list[CollectionUsage] = []
    for row in conn.execute(statement).all():
        if not _COLLECTION_ID.match(row.id):  # ids are server-made; never quote input
            continue
        name = f"pgv_{row.id}"
        count = conn.execute(select(func.count()).select_from(table(name))).scalar_one()
        size = conn.execute(_RELATION_SIZE, {"name": name}).scalar_one()
        found.append(
            CollectionUsage(
                id=row.id,
                tenant_id=row.tenant_id,
                name=row.name,
                dim=int(row.dim),
                distance=_distance(row.distance, row.config),
                points=int(count),
                disk_bytes=int(size),
            )
        )
    return found
