"""What each Qdrant request body may hold: every field Bastion carries out, and no other.

A client must never believe it got what it asked for when Bastion did not do it: a
field that is not listed here (``quantization_config``, ``prefetch``, an unknown query
kind …) is a 400 naming it, never silently dropped. ``null`` is "not asked" (clients send
unset optional fields as ``null``), and a few fields are accepted only with the value
that asks for nothing Bastion lacks (``shard_number: 1``, ``sparse_vectors: {}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bastion.vectors.errors import BadRequest

Check = Callable[[Any], bool]


def _is(*values: Any) -> Check:
    return lambda value: any(value == v and type(value) is type(v) for v in values)


def _any(value: Any) -> bool:
    return True


def _empty(value: Any) -> bool:
    return bool(value == {} or value == [])


# A field's name → which values are carried out (any, when the check is ``_any``).
CREATE_COLLECTION: Mapping[str, Check] = {
    "vectors": _any,
    "hnsw_config": _any,
    "sparse_vectors": _empty,  # sparse vectors: not yet; "none" is what LangChain sends
    "shard_number": _is(1),
    "replication_factor": _is(1),
    "write_consistency_factor": _is(1),
    "on_disk_payload": _any,  # payloads live in the database either way
    "sharding_method": _is("auto"),
}
UPDATE_COLLECTION: Mapping[str, Check] = {
    "hnsw_config": _any,
    "vectors": _any,
    "params": _any,
    "sparse_vectors": _empty,
}
COLLECTION_PARAMS: Mapping[str, Check] = {
    "on_disk_payload": _any,
    "replication_factor": _is(1),
    "write_consistency_factor": _is(1),
}
VECTOR_UPDATE: Mapping[str, Check] = {"hnsw_config": _any, "on_disk": _is(False)}
VECTOR_PARAMS: Mapping[str, Check] = {
    "size": _any,
    "distance": _any,
    "hnsw_config": _any,
    "on_disk": _is(False),
    "datatype": _is("float32"),
}
HNSW_CONFIG: Mapping[str, Check] = {
    "m": _any,
    "ef_construct": _any,
    "full_scan_threshold": _any,
    "max_indexing_threads": _any,  # how many threads build the graph: no effect on results
    "on_disk": _is(False),
}
UPSERT: Mapping[str, Check] = {
    "points": _any,
    "batch": _any,
    "update_filter": _any,
    "update_mode": _any,
}
POINT: Mapping[str, Check] = {"id": _any, "vector": _any, "payload": _any}
UPDATE_VECTORS: Mapping[str, Check] = {"points": _any, "update_filter": _any}
POINT_VECTORS: Mapping[str, Check] = {"id": _any, "vector": _any}
DELETE_VECTORS: Mapping[str, Check] = {"points": _any, "filter": _any, "vector": _any}
BATCH: Mapping[str, Check] = {"ids": _any, "vectors": _any, "payloads": _any}
SEARCH_PARAMS: Mapping[str, Check] = {
    "hnsw_ef": _any,
    "exact": _any,
    "indexed_only": _is(False),
}
_READ_COMMON: Mapping[str, Check] = {
    "filter": _any,
    "limit": _any,
    "offset": _any,
    "with_payload": _any,
    "with_vector": _any,
    "score_threshold": _any,
    "params": _any,
}
SEARCH: Mapping[str, Check] = {**_READ_COMMON, "vector": _any}
QUERY: Mapping[str, Check] = {**_READ_COMMON, "query": _any, "using": _any}
RECOMMEND: Mapping[str, Check] = {
    **_READ_COMMON,
    "positive": _any,
    "negative": _any,
    "strategy": _any,
    "using": _any,
}
_GROUPING: Mapping[str, Check] = {"group_by": _any, "group_size": _any}
QUERY_GROUPS: Mapping[str, Check] = {
    **{k: v for k, v in QUERY.items() if k != "offset"},
    **_GROUPING,
}
SEARCH_GROUPS: Mapping[str, Check] = {
    **{k: v for k, v in SEARCH.items() if k != "offset"},
    **_GROUPING,
}
NEAREST_QUERY: Mapping[str, Check] = {"nearest": _any, "mmr": _any}
RECOMMEND_QUERY: Mapping[str, Check] = {"recommend": _any}
RECOMMEND_INPUT: Mapping[str, Check] = {"positive": _any, "negative": _any, "strategy": _any}
MMR: Mapping[str, Check] = {"diversity": _any, "candidates_limit": _any}
SCROLL: Mapping[str, Check] = {
    "filter": _any,
    "limit": _any,
    "offset": _any,
    "with_payload": _any,
    "with_vector": _any,
    "order_by": _any,
}
ORDER_BY: Mapping[str, Check] = {"key": _any, "direction": _any, "start_from": _any}
COUNT: Mapping[str, Check] = {"filter": _any, "exact": _any}
RETRIEVE: Mapping[str, Check] = {"ids": _any, "with_payload": _any, "with_vector": _any}
DELETE: Mapping[str, Check] = {"points": _any, "filter": _any}
SET_PAYLOAD: Mapping[str, Check] = {"payload": _any, "points": _any, "filter": _any, "key": _any}
OVERWRITE_PAYLOAD: Mapping[str, Check] = {"payload": _any, "points": _any, "filter": _any}
DELETE_PAYLOAD: Mapping[str, Check] = {"keys": _any, "points": _any, "filter": _any}
SEARCHES: Mapping[str, Check] = {"searches": _any}
# Everywhere: Qdrant's sharding key, meaningful only with custom sharding (never here).
_EVERYWHERE: Mapping[str, Check] = {"shard_key": lambda value: False}


def only(body: Mapping[str, Any], allowed: Mapping[str, Check], where: str = "") -> None:
    """Refuse the first field of ``body`` that Bastion would not carry out as asked."""
    for field, value in body.items():
        if value is None:
            continue
        check = allowed.get(field) or _EVERYWHERE.get(field)
        if check is None or not check(value):
            name = f"{where}.{field}" if where else field
            detail = "is not supported" if check is None else f"={_short(value)} is not supported"
            raise BadRequest(f"{name} {detail} by Bastion")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
