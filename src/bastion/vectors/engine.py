"""The engine interface every vector backend implements (embedded today, pgvector next).

Everything is keyed by ``(tenant_id, collection name)``; two tenants may own collections
with the same name and never see each other's. Point ids travel as storage keys
(``bastion.vectors.ids``). Methods raise ``CollectionNotFound``, ``CollectionExists`` or
``BadRequest``; a write returns only after it is durable and visible to search.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from bastion.vectors.filters import Filter
from bastion.vectors.payloads import PayloadChange

Distance = Literal["Cosine", "Dot", "Euclid"]
DISTANCES: tuple[Distance, ...] = ("Cosine", "Dot", "Euclid")
PAYLOAD_SCHEMAS = ("keyword", "integer", "float", "bool", "uuid", "text", "datetime")
Vector = npt.NDArray[np.float32]
# Upsert's ``update_mode``: insert new points and update existing ones (the default),
# only insert (existing points are left as they are), only update (no new points).
UpsertMode = Literal["upsert", "insert_only", "update_only"]
UPSERT_MODES: tuple[UpsertMode, ...] = ("upsert", "insert_only", "update_only")


@dataclass(frozen=True)
class HnswParams:
    """Qdrant's ``hnsw_config`` (defaults as Qdrant's) plus the search-time ``ef``."""

    m: int = 16
    ef_construct: int = 100
    full_scan_threshold: int = 10_000  # KiB of vectors below which search is exact
    ef: int = 64


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    dim: int
    distance: Distance
    hnsw: HnswParams = field(default_factory=HnswParams)


@dataclass(frozen=True)
class CollectionInfo:
    spec: CollectionSpec
    points_count: int
    indexed_vectors_count: int
    payload_schema: dict[str, tuple[str, int]]  # field -> (schema, points with the field)
    created_at: datetime | None


@dataclass(frozen=True)
class PayloadSelector:
    """``with_payload``: everything, nothing, only ``include`` keys, or all but ``exclude``."""

    enabled: bool = True
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PointWrite:
    key: str
    payload: dict[str, Any] | None


class PointRecord(NamedTuple):  # a tuple: built by the thousand per scroll and search
    key: str
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None


class ScoredRecord(NamedTuple):
    key: str
    score: float
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None


@dataclass(frozen=True)
class SearchQuery:
    vector: Vector
    limit: int = 10
    offset: int = 0
    filter: Filter | None = None
    score_threshold: float | None = None
    with_payload: PayloadSelector = field(default_factory=PayloadSelector)
    with_vector: bool = False
    ef: int | None = None
    exact: bool = False


@dataclass(frozen=True)
class OrderBy:
    """Scroll's ``order_by``: by the numbers a payload key holds (an integer or float
    payload index on it is required, as in Qdrant); a point appears once per value."""

    key: str
    descending: bool = False
    start_from: float | None = None  # the first value (inclusive) of the page


ORDER_SCHEMAS = ("integer", "float")


@dataclass(frozen=True)
class ScrollPage:
    points: list[PointRecord]
    next_key: str | None


class VectorEngine(Protocol):
    def open(self) -> None:
        """Blocking start-up (the app runs it in a thread before serving)."""

    def close(self) -> None:
        """Blocking shutdown: flush whatever the engine keeps outside its database."""

    async def list_collections(self, tenant_id: str) -> list[str]: ...

    async def collection_exists(self, tenant_id: str, name: str) -> bool: ...

    async def get_collection(self, tenant_id: str, name: str) -> CollectionInfo: ...

    # Writes record their audit event (``collection.created`` …) in their own write
    # transaction, ``actor`` being who asked: the change and its event commit together.

    async def create_collection(
        self, tenant_id: str, spec: CollectionSpec, *, actor: str
    ) -> None: ...

    async def delete_collection(self, tenant_id: str, name: str, *, actor: str) -> bool: ...

    async def update_collection(
        self, tenant_id: str, name: str, hnsw: HnswParams, *, actor: str
    ) -> None:
        """Change the parameters that apply without rebuilding anything (today the exact
        search threshold, ``full_scan_threshold``); ``m`` and ``ef_construct`` stay."""
        ...

    async def create_payload_index(
        self, tenant_id: str, name: str, field_name: str, schema: str, *, actor: str
    ) -> None: ...

    async def delete_payload_index(
        self, tenant_id: str, name: str, field_name: str, *, actor: str
    ) -> bool:
        """Drop the payload index on ``field_name`` (any stored name, even one refused
        today: a collection is never left with an index it cannot lose); False when
        there was none. Audited as ``index.deleted`` when one was dropped."""
        ...

    async def upsert(
        self,
        tenant_id: str,
        name: str,
        points: Sequence[PointWrite],
        vectors: Vector,
        *,
        actor: str,
        update_filter: Filter | None = None,
        mode: UpsertMode = "upsert",
    ) -> int:
        """Write ``points``; an existing point is changed only when it matches
        ``update_filter`` (if given) and ``mode`` allows it. Returns how many were written."""
        ...

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
        """Apply ``change`` to the payload of the points ``keys`` (every one must exist:
        ``PointNotFound`` otherwise, and nothing changes) or of those ``filter`` matches.
        Returns how many points changed."""
        ...

    async def retrieve(
        self,
        tenant_id: str,
        name: str,
        keys: Sequence[str],
        *,
        with_payload: PayloadSelector,
        with_vector: bool,
    ) -> list[PointRecord]: ...

    async def delete_points(
        self,
        tenant_id: str,
        name: str,
        *,
        keys: Sequence[str] | None = None,
        filter: Filter | None = None,
        actor: str,
    ) -> int: ...

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
    ) -> ScrollPage: ...

    async def scroll_ordered(
        self,
        tenant_id: str,
        name: str,
        *,
        filter: Filter | None,
        order_by: OrderBy,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: bool,
    ) -> list[tuple[PointRecord, float]]:
        """The first ``limit`` (point, value) pairs in ``order_by``'s order (ties by id)."""
        ...

    async def count(self, tenant_id: str, name: str, *, filter: Filter | None) -> int: ...

    async def search(self, tenant_id: str, name: str, query: SearchQuery) -> list[ScoredRecord]: ...

    def export(self, tenant_id: str, name: str) -> AsyncIterator[PointRecord]: ...
