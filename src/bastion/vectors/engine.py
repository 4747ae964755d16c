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

Distance = Literal["Cosine", "Dot", "Euclid"]
DISTANCES: tuple[Distance, ...] = ("Cosine", "Dot", "Euclid")
PAYLOAD_SCHEMAS = ("keyword", "integer", "float", "bool", "uuid", "text", "datetime")
Vector = npt.NDArray[np.float32]


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
    ) -> int: ...

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

    async def count(self, tenant_id: str, name: str, *, filter: Filter | None) -> int: ...

    async def search(self, tenant_id: str, name: str, query: SearchQuery) -> list[ScoredRecord]: ...

    def export(self, tenant_id: str, name: str) -> AsyncIterator[PointRecord]: ...
