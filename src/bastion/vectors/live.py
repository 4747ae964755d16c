"""One collection in memory: slots, vectors, payloads, payload indexes, the ANN index, search.

SQLite holds the truth; this mirrors it so reads and searches never touch the disk.
A *slot* is a point's row in ``vectors`` and its label in the ANN indexes (``points.seq``);
freed slots are reused. A collection of named vectors keeps a point's vectors side by
side in its row (``VectorParams.offset``; one it lacks is NaN) and one ANN index per
vector (``anns``), holding only the points that have that vector. Callers hold ``lock``
around every method: ``read()`` for searches and reads (many at once), ``write()`` for
changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.vectors.ann import AnnIndex
from bastion.vectors.checks import prepare_rows, present, unit
from bastion.vectors.engine import (
    ORDER_SCHEMAS,
    CollectionSpec,
    OrderBy,
    PayloadSelector,
    PointRecord,
    ScoredRecord,
    SearchQuery,
    Vector,
    VectorOut,
    VectorParams,
    WithVector,
)
from bastion.vectors.errors import BadRequest
from bastion.vectors.filters import Filter
from bastion.vectors.predicates import compile_filter, extract, indexable_matches, required_keys
from bastion.vectors.predicates import typed as typed_value
from bastion.vectors.rwlock import ReadWriteLock

Slots = npt.NDArray[np.int64]
INDEXED_SCHEMAS = ("keyword", "integer", "bool", "uuid")  # exact-value inverted indexes
_OVERSAMPLE_MIN_FRACTION = 0.2
EF_SCALE_POINTS = 100_000  # the default ef applies as is up to this many points
MAX_DEFAULT_EF = 1024
# What a search may cost on the event loop (issue 11, item 5): a request run there stalls
# every other one meanwhile, so only work bounded to about a millisecond runs there;
# more goes to a worker thread (a hop costs ~0.4 ms of CPU, docs/benchmarks.md).
ON_LOOP_RESULTS = 1_000  # offset + limit
ON_LOOP_FILTER_STEPS = 4_096  # candidate points x filter weight (conditions + values)
ON_LOOP_MULTIPLY_ADDS = 1 << 22  # an exact scan: candidate points x dimension


@dataclass(frozen=True)
class SlotPlan:
    slots: Slots
    new_count: int  # how many keys are new points
    high: int  # slots in use after the write (high-water mark)


class LiveCollection:
    def __init__(
        self, *, id: str, tenant_id: str, spec: CollectionSpec, created_at: datetime | None
    ) -> None:
        self.id = id
        self.tenant_id = tenant_id
        self.spec = spec
        self.created_at = created_at
        self.version = 0
        self.lock = ReadWriteLock()
        self.keys: list[str | None] = []
        self.payloads: list[dict[str, Any] | None] = []
        self.vectors: npt.NDArray[np.float32] = np.zeros((0, spec.dim), np.float32)
        self.live: npt.NDArray[np.bool_] = np.zeros(0, bool)
        self.slot_of: dict[str, int] = {}
        self.free: list[int] = []
        self.anns: dict[str, AnnIndex] = {params.name: new_ann(params) for params in spec.vectors}
        self.index_schema: dict[str, str] = {}
        self.inverted: dict[str, dict[tuple[str, Any], set[int]]] = {}
        self.dirty = True  # ANN differs from the saved file

    # -- writes ------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.slot_of)

    @property
    def ann(self) -> AnnIndex:
        """The index of the collection's first (for most, its only) vector."""
        return self.anns[self.spec.vectors[0].name]

    def size(self, params: VectorParams) -> int:
        """How many points hold the vector ``params`` (every point, when unnamed)."""
        return self.anns[params.name].live_count if self.spec.named else self.count

    def prepare(self, vectors: Vector) -> Vector:
        """The stored form: Cosine vectors are normalised once, on write (as Qdrant)."""
        return prepare_rows(vectors, self.spec)

    @staticmethod
    def _prepare_query(vector: Vector, params: VectorParams) -> Vector:
        """``prepare`` for one query vector, without the batch machinery (hot path)."""
        if params.distance == "Cosine":
            return unit(vector)
        return np.ascontiguousarray(vector, dtype=np.float32)

    def plan_slots(self, keys: Sequence[str]) -> SlotPlan:
        free = list(self.free)
        high = len(self.keys)
        slots = np.empty(len(keys), np.int64)
        new_count = 0
        for i, key in enumerate(keys):
            existing = self.slot_of.get(key)
            if existing is not None:
                slots[i] = existing
                continue
            new_count += 1
            if free:
                slots[i] = free.pop()
            else:
                slots[i] = high
                high += 1
        return SlotPlan(slots, new_count, high)

    def _grow(self, high: int) -> None:
        if high <= len(self.keys):
            return
        extra = high - len(self.keys)
        self.keys.extend([None] * extra)
        self.payloads.extend([None] * extra)
        if high > len(self.live):
            capacity = max(high, 2 * len(self.live), 1024)
            vectors = np.zeros((capacity, self.spec.dim), np.float32)
            vectors[: len(self.vectors)] = self.vectors
            live = np.zeros(capacity, bool)
            live[: len(self.live)] = self.live
            self.vectors, self.live = vectors, live

    def apply_upsert(
        self,
        keys: Sequence[str],
        plan: SlotPlan,
        vectors: Vector,
        payloads: Sequence[dict[str, Any] | None],
        *,
        index: bool = True,
    ) -> None:
        """Mirror a committed upsert (``vectors`` already prepared)."""
        self._grow(plan.high)
        reused = set(self.free)
        for key, slot, payload in zip(keys, plan.slots.tolist(), payloads, strict=True):
            if self.keys[slot] is not None:
                self._unindex_payload(slot)
            if slot in reused:
                reused.discard(slot)
            self.keys[slot] = key
            self.payloads[slot] = payload
            self.slot_of[key] = slot
            self._index_payload(slot)
        self.free = [slot for slot in self.free if slot in reused]
        self.vectors[plan.slots] = vectors
        self.live[plan.slots] = True
        if index:
            self.index_vectors(plan.slots, vectors)
        self.dirty = True

    def index_vectors(self, slots: Slots, vectors: Vector) -> None:
        """Put stored rows into the ANN indexes (a named vector a row lacks is taken out
        of its index: an upsert replaces the whole point)."""
        if not self.spec.named:
            self.ann.add(vectors, slots)
            return
        for params in self.spec.named:
            there = present(vectors, params)
            ann = self.anns[params.name]
            block = vectors[there, params.offset : params.offset + params.dim]
            ann.add(np.ascontiguousarray(block), slots[there])
            if not there.all():
                ann.delete(slots[~there])

    def apply_payloads(self, slots: Sequence[int], payloads: Sequence[dict[str, Any]]) -> None:
        """Mirror a committed payload change (the vectors stay as they are)."""
        for slot, payload in zip(slots, payloads, strict=True):
            self._unindex_payload(slot)
            self.payloads[slot] = payload
            self._index_payload(slot)

    def apply_delete(self, slots: Slots) -> None:
        for slot in slots.tolist():
            key = self.keys[slot]
            if key is None:
                continue
            self._unindex_payload(slot)
            del self.slot_of[key]
            self.keys[slot] = None
            self.payloads[slot] = None
            self.free.append(slot)
        self.live[slots] = False
        for ann in self.anns.values():
            ann.delete(slots)
        self.dirty = True

    # -- payload indexes ---------------------------------------------------------------

    def add_payload_index(self, field: str, schema: str) -> None:
        self.index_schema[field] = schema
        if schema in INDEXED_SCHEMAS and "." not in field and "[" not in field:
            self.inverted[field] = {}
            for slot in np.flatnonzero(self.live[: len(self.keys)]).tolist():
                self._index_field(field, slot)

    def remove_payload_index(self, field: str) -> None:
        self.index_schema.pop(field, None)
        self.inverted.pop(field, None)

    def _index_field(self, field: str, slot: int) -> None:
        payload = self.payloads[slot]
        if not payload or field not in payload:
            return
        value = payload[field]
        for item in value if isinstance(value, list) else (value,):
            tag = typed_value(item)
            if tag is not None:
                self.inverted[field].setdefault(tag, set()).add(slot)

    def _index_payload(self, slot: int) -> None:
        for field in self.inverted:
            self._index_field(field, slot)

    def _unindex_payload(self, slot: int) -> None:
        payload = self.payloads[slot]
        if not payload:
            return
        for field, table in self.inverted.items():
            value = payload.get(field)
            if value is None:
                continue
            for item in value if isinstance(value, list) else (value,):
                tag = typed_value(item)
                if tag is not None and tag in table:
                    table[tag].discard(slot)

    def field_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for field in self.index_schema:
            path = _path(field)
            if path is None:  # a name stored before names were checked: no count
                counts[field] = 0
                continue
            counts[field] = sum(
                1
                for slot, payload in enumerate(self.payloads)
                if payload is not None and self.live[slot] and extract(payload, path)
            )
        return counts

    # -- reads -------------------------------------------------------------------------

    def live_slots(self) -> Slots:
        return np.flatnonzero(self.live[: len(self.keys)]).astype(np.int64)

    def is_cheap(self, query: SearchQuery) -> bool:
        """Whether ``search(query)`` is bounded to about a millisecond: then it may run on
        the event loop (the ``ON_LOOP_*`` bounds). A filter's cost is its weight times
        the points it is evaluated on (all of them, or those its ids and payload
        indexes narrow it to); an exact scan's, the points times the dimension."""
        if query.offset + query.limit > ON_LOOP_RESULTS:
            return False
        node = query.filter
        candidates = self.count
        if node is not None:
            if node.weight > ON_LOOP_FILTER_STEPS:
                return False
            candidates = self._candidates_at_most(node)
            if candidates * node.weight > ON_LOOP_FILTER_STEPS:
                return False
        params = self.spec.vector(query.using)
        if not (query.exact or candidates <= self._threshold_rows(params)):
            return node is None  # the graph; a filtered graph search builds a mask
        return candidates * params.dim <= ON_LOOP_MULTIPLY_ADDS

    def _candidates_at_most(self, node: Filter) -> int:
        """How many points ``_narrowed`` would leave at most, without building the sets
        (an index entry may hold a million slots: their union is not for the loop)."""
        bound = self.count
        keys = required_keys(node)
        if keys is not None:
            bound = min(bound, len(keys))
        for match in indexable_matches(node):
            table = self.inverted.get(match.key[0].name)
            if table is not None:
                found = (table.get(typed_value(v) or ("?", None), ()) for v in match.values)
                bound = min(bound, sum(len(slots) for slots in found))
        return bound

    def _narrowed(self, node: Filter) -> set[int] | None:
        narrowed: set[int] | None = None
        keys = required_keys(node)
        if keys is not None:
            narrowed = {self.slot_of[key] for key in keys if key in self.slot_of}
        for match in indexable_matches(node):
            table = self.inverted.get(match.key[0].name)
            if table is None:
                continue
            found: set[int] = set()
            for value in match.values:
                found |= table.get(typed_value(value) or ("?", None), set())
            narrowed = found if narrowed is None else narrowed & found
        return narrowed

    def matching_slots(self, node: Filter | None) -> Slots:
        if node is None:
            return self.live_slots()
        narrowed = self._narrowed(node)
        candidates: Iterable[int] = (
            sorted(narrowed) if narrowed is not None else self.live_slots().tolist()
        )
        predicate = compile_filter(node)
        keys, payloads = self.keys, self.payloads
        found = [
            slot
            for slot in candidates
            if (key := keys[slot]) is not None and predicate(key, payloads[slot] or {})
        ]
        return np.asarray(found, dtype=np.int64)

    def record(self, slot: int, selector: PayloadSelector, with_vector: WithVector) -> PointRecord:
        return PointRecord(
            key=self.keys[slot] or "",
            payload=select_payload(self.payloads[slot], selector),
            vector=vector_out(self.spec, self.vectors[slot], self.spec.selected(with_vector)),
        )

    def retrieve(
        self, keys: Sequence[str], selector: PayloadSelector, with_vector: WithVector
    ) -> list[PointRecord]:
        out = []
        for key in dict.fromkeys(keys):
            slot = self.slot_of.get(key)
            if slot is not None:
                out.append(self.record(slot, selector, with_vector))
        return out

    # -- search ------------------------------------------------------------------------

    @staticmethod
    def _threshold_rows(params: VectorParams) -> int:
        """Below this many candidate points an exact scan beats the graph (Qdrant's rule)."""
        return params.hnsw.full_scan_threshold * 1024 // (4 * params.dim)

    def plain_ann(self, query: SearchQuery) -> tuple[Vector, int] | None:
        """For a query the graph answers alone (no filter, not exact, a big enough
        collection): the prepared vector and the search breadth; else None."""
        need = query.offset + query.limit
        if query.filter is not None or query.exact or need <= 0 or need > ON_LOOP_RESULTS:
            return None
        params = self.spec.vector(query.using)
        if self.size(params) <= self._threshold_rows(params):
            return None
        breadth = max(query.ef or self.default_ef(params), need)
        return self._prepare_query(query.vector, params), breadth

    def finish_ann(
        self, labels: Slots, raw: npt.NDArray[np.float32], query: SearchQuery
    ) -> list[ScoredRecord]:
        """Results of a ``plain_ann`` query from its graph search (hnswlib distances)."""
        need = query.offset + query.limit
        params = self.spec.vector(query.using)
        return self._results(labels[:need], self._score(raw[:need], params), query, params)

    def _holding(self, slots: Slots, params: VectorParams) -> Slots:
        """Those of ``slots`` whose point holds the vector ``params``."""
        if not self.spec.named:
            return slots
        kept: Slots = slots[present(self.vectors[slots], params)]
        return kept

    def search(self, query: SearchQuery) -> list[ScoredRecord]:
        params = self.spec.vector(query.using)
        vector = self._prepare_query(query.vector, params)
        need = query.offset + query.limit
        if need <= 0 or self.size(params) == 0:
            return []
        threshold_rows = self._threshold_rows(params)
        if query.filter is None:
            if query.exact or self.size(params) <= threshold_rows:
                slots, scores = self._exact(
                    vector, self._holding(self.live_slots(), params), need, params
                )
            else:
                slots, scores = self._ann(vector, need, query.ef, None, params)
        else:
            allowed = self._holding(self.matching_slots(query.filter), params)
            if len(allowed) == 0:
                return []
            if query.exact or len(allowed) <= threshold_rows:
                slots, scores = self._exact(vector, allowed, need, params)
            else:
                slots, scores = self._ann(vector, need, query.ef, allowed, params)
                if len(slots) < min(need, len(allowed)):  # never lose recall silently
                    slots, scores = self._exact(vector, allowed, need, params)
        return self._results(slots, scores, query, params)

    @staticmethod
    def _score(raw: npt.NDArray[np.float32], params: VectorParams) -> npt.NDArray[np.float32]:
        if params.distance == "Euclid":
            return np.sqrt(np.maximum(raw, 0)).astype(np.float32)
        return (1.0 - raw).astype(np.float32)

    def _exact(
        self, vector: Vector, slots: Slots, need: int, params: VectorParams
    ) -> tuple[Slots, npt.NDArray[np.float32]]:
        if self.spec.named:
            matrix = self.vectors[slots, params.offset : params.offset + params.dim]
        else:
            matrix = self.vectors[slots]
        if params.distance == "Euclid":
            diff = matrix - vector
            scores = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            order_key = scores
        else:
            scores = matrix @ vector
            order_key = -scores
        need = min(need, len(slots))
        if need < len(slots):
            top = np.argpartition(order_key, need - 1)[:need]
        else:
            top = np.arange(len(slots))
        top = top[np.argsort(order_key[top], kind="stable")]
        return slots[top], scores[top].astype(np.float32)

    def _ann(
        self,
        vector: Vector,
        need: int,
        ef: int | None,
        allowed: Slots | None,
        params: VectorParams,
    ) -> tuple[Slots, npt.NDArray[np.float32]]:
        ef = max(ef or self.default_ef(params), need)
        ann = self.anns[params.name]
        if allowed is None:
            labels, raw = ann.search(vector, need, ef=ef)
            return labels, self._score(raw, params)
        mask = np.zeros(len(self.keys), bool)
        mask[allowed] = True
        size = self.size(params)
        fraction = len(allowed) / max(size, 1)
        if fraction >= _OVERSAMPLE_MIN_FRACTION:  # broad filter: over-fetch, then post-filter
            wanted = min(size, math.ceil(need / fraction * 1.5) + 10)
            labels, raw = ann.search(vector, wanted, ef=max(ef, wanted))
            keep = mask[labels]
            if int(keep.sum()) >= need:
                return labels[keep][:need], self._score(raw[keep][:need], params)
        labels, raw = ann.search(vector, need, ef=ef, allowed=mask.tolist().__getitem__)
        return labels, self._score(raw, params)

    def default_ef(self, params: VectorParams | None = None) -> int:
        """Search breadth when a query names none: ``spec.hnsw.ef`` (64) per 100,000
        points, at least that, at most ``MAX_DEFAULT_EF``. A fixed breadth loses recall
        as the graph grows (measured at 1,000,000 points: recall@10 0.60 at ef 64, 0.93
        at 512, docs/benchmarks.md); growing it with the collection keeps recall where
        the 100,000-point defaults put it, at a search cost that grows with it."""
        params = params or self.spec.vectors[0]
        base = params.hnsw.ef
        scaled = math.ceil(base * self.size(params) / EF_SCALE_POINTS)
        return min(max(base, scaled), max(base, MAX_DEFAULT_EF))

    def _results(
        self,
        slots: Slots,
        scores: npt.NDArray[np.float32],
        query: SearchQuery,
        params: VectorParams,
    ) -> list[ScoredRecord]:
        out: list[ScoredRecord] = []
        threshold = query.score_threshold
        euclid = params.distance == "Euclid"
        selector = query.with_payload
        selected = self.spec.selected(query.with_vector)
        spec, keys, payloads, vectors = self.spec, self.keys, self.payloads, self.vectors
        for slot, score in zip(
            slots.tolist()[query.offset :], scores.tolist()[query.offset :], strict=True
        ):
            if threshold is not None and (score > threshold if euclid else score < threshold):
                break
            key = keys[slot]
            if key is None:
                continue
            out.append(
                ScoredRecord(
                    key,
                    score,
                    select_payload(payloads[slot], selector) if selector.enabled else None,
                    vector_out(spec, vectors[slot], selected) if selected else None,
                )
            )
        return out[: query.limit]


def new_ann(params: VectorParams, capacity: int = 1024) -> AnnIndex:
    return AnnIndex(
        dim=params.dim,
        distance=params.distance,
        m=params.hnsw.m,
        ef_construct=params.hnsw.ef_construct,
        capacity=capacity,
    )


def vector_out(
    spec: CollectionSpec, row: Vector, selected: tuple[VectorParams, ...]
) -> VectorOut | None:
    """A point's vectors as answered: the unnamed one as a list, named ones as
    ``{name: [...]}`` (those the point holds, of those ``selected``); None: not asked."""
    if not selected:
        return None
    if not spec.named:
        return row.tolist()  # type: ignore[no-any-return]
    out: dict[str, list[float]] = {}
    for params in selected:
        block = row[params.offset : params.offset + params.dim]
        if not np.isnan(block[0]):
            out[params.name] = block.tolist()
    return out


def check_order_index(order_by: OrderBy, schema: str | None) -> None:
    """``order_by`` needs an integer or float payload index on its key (as in Qdrant)."""
    if schema not in ORDER_SCHEMAS:
        raise BadRequest(
            f"order_by {order_by.key!r} needs an integer or float payload index on that key"
            + ("" if schema is None else f" (it has a {schema} index)")
        )


def _path(field: str) -> Any:
    from bastion.vectors.filters import parse_key

    try:
        return parse_key(field)
    except BadRequest:
        return None


def select_payload(
    payload: dict[str, Any] | None, selector: PayloadSelector
) -> dict[str, Any] | None:
    if not selector.enabled:
        return None
    payload = payload or {}
    if selector.include is not None:
        return {key: payload[key] for key in selector.include if key in payload}
    if selector.exclude is not None:
        return {key: value for key, value in payload.items() if key not in selector.exclude}
    return payload
