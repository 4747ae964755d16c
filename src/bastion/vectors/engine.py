"""The engine interface every vector backend implements (embedded today, pgvector next).

Everything is keyed by ``(tenant_id, collection name)``; two tenants may own collections
with the same name and never see each other's. Point ids travel as storage keys
(``bastion.vectors.ids``). Methods raise ``CollectionNotFound``, ``CollectionExists`` or
``BadRequest``; a write returns only after it is durable and visible to search.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from bastion.vectors.errors import BadRequest
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
class VectorParams:
    """One vector of a collection: its name (``""``: Qdrant's default, unnamed vector),
    size, distance and HNSW parameters, and where it sits in a point's stored row (the
    embedded engine stores a point's vectors side by side, ``offset`` floats in)."""

    name: str
    dim: int
    distance: Distance
    hnsw: HnswParams = field(default_factory=HnswParams)
    offset: int = 0


@dataclass(frozen=True)
class CollectionSpec:
    """A collection's vectors: one unnamed vector (``dim``, ``distance``, ``hnsw``), or
    several named ones (``named``, in name order; Qdrant's ``"vectors": {"text": {…},
    "image": {…}}``). For a named collection ``dim`` is the width of a point's stored row
    (every vector side by side), ``distance`` the first vector's, ``hnsw`` the collection's
    defaults (each named vector has its own)."""

    name: str
    dim: int
    distance: Distance
    hnsw: HnswParams = field(default_factory=HnswParams)
    named: tuple[VectorParams, ...] = ()

    @classmethod
    def of_named(
        cls, name: str, vectors: Sequence[VectorParams], hnsw: HnswParams
    ) -> CollectionSpec:
        """A collection of named vectors (their offsets are set here, in name order)."""
        placed: list[VectorParams] = []
        offset = 0
        for params in sorted(vectors, key=lambda params: params.name):
            placed.append(
                VectorParams(params.name, params.dim, params.distance, params.hnsw, offset)
            )
            offset += params.dim
        return cls(name, offset, placed[0].distance, hnsw, tuple(placed))

    @cached_property
    def vectors(self) -> tuple[VectorParams, ...]:
        """Every vector of the collection (the unnamed one is named ``""``)."""
        return self.named or (VectorParams("", self.dim, self.distance, self.hnsw),)

    @cached_property
    def by_name(self) -> Mapping[str, VectorParams]:
        return {params.name: params for params in self.vectors}

    def vector(self, name: str | None, where: str = "using") -> VectorParams:
        """The vector ``name`` (None: the default one); a 400 naming a vector the
        collection does not have, as Qdrant answers."""
        found = self.by_name.get(name or "")
        if found is not None:
            return found
        if not name and self.named:
            names = ", ".join(repr(params.name) for params in self.named)
            raise BadRequest(
                f"Wrong input: the collection has named vectors ({names}): name one ({where})"
            )
        raise BadRequest(f"Wrong input: Not existing vector name error: {name} ({where})")

    def selected(self, with_vector: WithVector) -> tuple[VectorParams, ...]:
        """The vectors ``with_vector`` asks for (a 400 naming one the collection lacks)."""
        if with_vector is True:
            return self.vectors
        if not with_vector:
            return ()
        return tuple(self.vector(name, "with_vector") for name in dict.fromkeys(with_vector))

    def with_hnsw(self, hnsw: HnswParams) -> CollectionSpec:
        """The same vectors with ``hnsw`` as the collection's parameters; each named
        vector takes its ``full_scan_threshold`` (the one parameter that may change)."""
        named = tuple(
            VectorParams(
                p.name,
                p.dim,
                p.distance,
                HnswParams(p.hnsw.m, p.hnsw.ef_construct, hnsw.full_scan_threshold, p.hnsw.ef),
                p.offset,
            )
            for p in self.named
        )
        return CollectionSpec(self.name, self.dim, self.distance, hnsw, named)

    def config(self) -> dict[str, Any]:
        """What ``collections.config`` stores (the named vectors, if any, in order)."""
        stored: dict[str, Any] = {"hnsw": asdict(self.hnsw)}
        if self.named:
            stored["vectors"] = [
                {"name": p.name, "size": p.dim, "distance": p.distance, "hnsw": asdict(p.hnsw)}
                for p in self.named
            ]
        return stored

    @classmethod
    def stored(
        cls, name: str, dim: int, distance: Distance, config: Mapping[str, Any] | None
    ) -> CollectionSpec:
        """The spec of a ``collections`` row (``config`` as ``config()`` wrote it)."""
        config = config or {}
        hnsw = HnswParams(**config.get("hnsw", {}))
        named = config.get("vectors")
        if not named:
            return cls(name=name, dim=dim, distance=distance, hnsw=hnsw)
        return cls.of_named(
            name,
            [
                VectorParams(v["name"], v["size"], v["distance"], HnswParams(**v["hnsw"]))
                for v in named
            ],
            hnsw,
        )


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


# ``with_vector``: none, all, or the vectors of these names (``""``: the unnamed one).
WithVector = bool | tuple[str, ...]
# A point's vectors as returned: the unnamed one, or {name: vector} of a named collection.
VectorOut = list[float] | dict[str, list[float]]
# An upsert's vectors: one row per point (the unnamed vector), or per point {name: vector}
# (a named collection's point may lack some of its vectors, not all).
PointVectors = Vector | Sequence[Mapping[str, Vector]]


class PointRecord(NamedTuple):  # a tuple: built by the thousand per scroll and search
    key: str
    payload: dict[str, Any] | None = None
    vector: VectorOut | None = None


class ScoredRecord(NamedTuple):
    key: str
    score: float
    payload: dict[str, Any] | None = None
    vector: VectorOut | None = None


@dataclass(frozen=True)
class SearchQuery:
    vector: Vector
    limit: int = 10
    offset: int = 0
    filter: Filter | None = None
    score_threshold: float | None = None
    with_payload: PayloadSelector = field(default_factory=PayloadSelector)
    with_vector: WithVector = False
    ef: int | None = None
    exact: bool = False
    using: str = ""  # the vector searched (``""``: the unnamed one)


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

    async def collection_spec(self, tenant_id: str, name: str) -> CollectionSpec:
        """The collection's vectors and parameters (cheap: no point is counted)."""
        ...

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
        vectors: PointVectors,
        *,
        actor: str,
        update_filter: Filter | None = None,
        mode: UpsertMode = "upsert",
    ) -> int:
        """Write ``points``; an existing point is changed only when it matches
        ``update_filter`` (if given) and ``mode`` allows it. Returns how many were written."""
        ...

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
        """Qdrant's ``update_vectors``: replace the vectors named in each point's
        ``{name: vector}`` (``""``: the unnamed one), keeping its other vectors and its
        payload. Every point must exist (``PointNotFound``, and nothing changes); with
        ``update_filter``, only the points it matches change. Returns how many changed."""
        ...

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
        """Qdrant's ``delete_vectors``: the named vectors ``names`` are taken off the points
        ``keys`` (every one must exist) or those ``filter`` matches; the points stay. A
        collection's unnamed vector cannot be deleted (a 400: delete the point)."""
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
        with_vector: WithVector,
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
        with_vector: WithVector,
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
        with_vector: WithVector,
    ) -> list[tuple[PointRecord, float]]:
        """The first ``limit`` (point, value) pairs in ``order_by``'s order (ties by id)."""
        ...

    async def count(self, tenant_id: str, name: str, *, filter: Filter | None) -> int: ...

    async def search(self, tenant_id: str, name: str, query: SearchQuery) -> list[ScoredRecord]: ...

    def export(self, tenant_id: str, name: str) -> AsyncIterator[PointRecord]: ...
