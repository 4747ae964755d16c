"""Qdrant request bodies → engine arguments, validated by hand on the hot path.

Bodies are parsed with orjson and turned straight into numpy float32; every problem is a
``BadRequest`` (400) naming the field, as Qdrant answers. No pydantic on the search path.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson

from bastion.vectors.engine import (
    DISTANCES,
    PAYLOAD_SCHEMAS,
    CollectionSpec,
    Distance,
    HnswParams,
    PayloadSelector,
    PointWrite,
    SearchQuery,
    Vector,
)
from bastion.vectors.errors import BadRequest, PayloadTooLarge
from bastion.vectors.filters import Filter, parse_filter, parse_index_field
from bastion.vectors.ids import parse_point_id, parse_point_ids

MAX_LIMIT = 10_000
MAX_OFFSET = 100_000
MAX_BATCH = 10_000
MAX_DIM = 65_536
MAX_VECTOR_WRAPPERS = 3
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


# -- payload limits (issue 11, items 15 and 16) -------------------------------------------
# A payload is returned by every read path inside a response envelope (scroll, retrieve,
# search, query: up to 4 levels above it; export's NDJSON lines), and orjson, which writes
# every response, refuses JSON nested more than 254 levels. A payload nested 252 to 254
# levels used to be accepted and then made every read that returned it answer 500, for
# every caller, until the point was deleted; one nested 255 or more broke the size check
# itself. So a payload is refused at write time unless every reader can return it: at
# most ``MAX_PAYLOAD_DEPTH`` levels of objects and arrays (the payload object is level
# 1), measured by a loop (no recursion: no input can exhaust Python's stack), and at
# most ``settings.max_payload_bytes`` bytes as compact JSON (413).
MAX_PAYLOAD_DEPTH = 64


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def check_payload(payload: Any, where: str, max_bytes: int) -> None:
    """A point's payload as written (raises ``BadRequest`` / ``PayloadTooLarge``)."""
    if not isinstance(payload, dict):
        raise BadRequest(f"{where} must be an object")
    if depth_exceeds(payload, MAX_PAYLOAD_DEPTH):
        raise BadRequest(
            f"{where} is nested more than {MAX_PAYLOAD_DEPTH} levels (objects and arrays)"
        )
    try:
        size = len(orjson.dumps(payload))
    except orjson.JSONEncodeError:
        raise BadRequest(f"{where} cannot be stored as JSON") from None
    if size > max_bytes:
        raise PayloadTooLarge(f"{where} is larger than {max_bytes} bytes")


def load_json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("Format error in JSON body: the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("Format error in JSON body: expected a JSON object")
    return value


def check_collection_name(name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise BadRequest("collection name must be 1-255 characters: letters, digits, '_', '-', '.'")
    return name


def _int(body: dict[str, Any], field: str, default: int, low: int, high: int) -> int:
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{field} must be an integer")
    if not low <= value <= high:
        raise BadRequest(f"{field} must be between {low} and {high}")
    return value


def limit_of(body: dict[str, Any], default: int = 10) -> int:
    return _int(body, "limit", default, 1, MAX_LIMIT)


def filter_of(body: dict[str, Any]) -> Filter | None:
    """The body's ``filter``: parsed here, or already parsed (``parse_heavy_filter``)."""
    raw = body.get("filter")
    if raw is None or isinstance(raw, Filter):
        return raw
    return parse_filter(raw)


# A filter whose JSON is larger than this takes milliseconds to parse (~0.25 ms per KiB):
# the data plane parses it in a worker thread (``parse_heavy_filter``), not on the loop.
HEAVY_FILTER_BYTES = 4096


def is_heavy_filter(body: dict[str, Any]) -> bool:
    raw = body.get("filter")
    if raw is None or isinstance(raw, Filter):
        return False
    try:
        return len(orjson.dumps(raw)) > HEAVY_FILTER_BYTES
    except orjson.JSONEncodeError:  # nested past what orjson writes: parsing refuses it
        return True


def parse_heavy_filter(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its ``filter`` parsed (run in a worker thread by the data plane)."""
    return {**body, "filter": parse_filter(body["filter"])}


_ALL_PAYLOAD = PayloadSelector(enabled=True)
_NO_PAYLOAD = PayloadSelector(enabled=False)


def payload_selector(raw: Any, *, default: bool) -> PayloadSelector:
    if raw is None:
        raw = default
    if isinstance(raw, bool):
        return _ALL_PAYLOAD if raw else _NO_PAYLOAD
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return PayloadSelector(include=tuple(raw))
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, keys),) = raw.items()
        strings = isinstance(keys, list) and all(isinstance(item, str) for item in keys)
        if strings and kind == "include":
            return PayloadSelector(include=tuple(keys))
        if strings and kind == "exclude":
            return PayloadSelector(exclude=tuple(keys))
    raise BadRequest("with_payload must be a boolean, a list of keys, or {include|exclude: [...]}")


def with_vector_of(raw: Any) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, list):
        return bool(raw)
    raise BadRequest("with_vector must be a boolean or a list of vector names")


def vector_of(raw: Any, where: str = "vector") -> Vector:
    """One dense vector (a list of numbers, or Qdrant's ``{"": [...]}`` / named form).

    Wrappers are taken off in a loop, at most ``MAX_VECTOR_WRAPPERS`` of them (Qdrant's
    deepest form is ``{"nearest": {"vector": {"": [...]}}}``): ~990 nested wrappers used
    to exhaust Python's recursion limit (a 500, issue 11, item 15)."""
    for _ in range(MAX_VECTOR_WRAPPERS + 1):
        if not isinstance(raw, dict):
            break
        if "nearest" in raw:
            raw = raw["nearest"]
        elif set(raw) <= {"name", "vector"} and "vector" in raw:
            raw = raw["vector"]
        elif len(raw) == 1 and "" in raw:
            raw = raw[""]
        else:
            raise BadRequest(f"{where}: named, sparse and multi vectors are not supported")
    else:
        raise BadRequest(f"{where} is wrapped too deeply (nearest / vector)")
    if not isinstance(raw, list) or not raw:
        raise BadRequest(f"{where} must be a non-empty list of numbers")
    try:
        array = np.asarray(raw)
    except ValueError:
        raise BadRequest(f"{where} must be a flat list of numbers") from None
    if array.ndim != 1 or array.dtype.kind not in "fiu":
        raise BadRequest(f"{where} must be a flat list of numbers")
    with np.errstate(over="ignore"):
        return array.astype(np.float32)


def collection_spec(name: str, body: dict[str, Any]) -> CollectionSpec:
    vectors = body.get("vectors")
    if not isinstance(vectors, dict):
        raise BadRequest("vectors must be {size, distance}")
    if "size" not in vectors and len(vectors) == 1:
        raise BadRequest("named vectors are not supported: use one unnamed vector")
    size = vectors.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_DIM:
        raise BadRequest(f"vectors.size must be an integer between 1 and {MAX_DIM}")
    distance = vectors.get("distance")
    if distance not in DISTANCES:
        raise BadRequest("vectors.distance must be Cosine, Dot or Euclid")
    hnsw = HnswParams()
    for source in (body.get("hnsw_config"), vectors.get("hnsw_config")):
        if source is None:
            continue
        if not isinstance(source, dict):
            raise BadRequest("hnsw_config must be an object")
        hnsw = HnswParams(
            m=_int(source, "m", hnsw.m, 2, 128),
            ef_construct=_int(source, "ef_construct", hnsw.ef_construct, 4, 4096),
            full_scan_threshold=_int(
                source, "full_scan_threshold", hnsw.full_scan_threshold, 0, 10**9
            ),
            ef=hnsw.ef,
        )
    dist: Distance = distance
    return CollectionSpec(name=name, dim=size, distance=dist, hnsw=hnsw)


def points_of(body: dict[str, Any], max_payload_bytes: int) -> tuple[list[PointWrite], Vector]:
    """``{"points": [...]}`` or ``{"batch": {ids, vectors, payloads}}`` → writes + matrix."""
    if "batch" in body:
        batch = body["batch"]
        if not isinstance(batch, dict):
            raise BadRequest("batch must be an object")
        ids, raw_vectors = batch.get("ids"), batch.get("vectors")
        if not isinstance(ids, list) or not isinstance(raw_vectors, list):
            raise BadRequest("batch needs ids and vectors lists")
        payloads = batch.get("payloads") or [None] * len(ids)
        if not isinstance(payloads, list) or not len(ids) == len(raw_vectors) == len(payloads):
            raise BadRequest("batch ids, vectors and payloads must have the same length")
        items = [
            {"id": i, "vector": v, "payload": p}
            for i, v, p in zip(ids, raw_vectors, payloads, strict=True)
        ]
    else:
        raw_items = body.get("points")
        if not isinstance(raw_items, list):
            raise BadRequest("points must be a list of {id, vector, payload}")
        items = raw_items
    if not items:
        raise BadRequest("points must not be empty")
    if len(items) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} points per request")
    writes: list[PointWrite] = []
    rows: list[Vector] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or "vector" not in item:
            raise BadRequest(f"points[{index}] must have an id and a vector")
        payload = item.get("payload")
        if payload is not None:
            check_payload(payload, f"points[{index}].payload", max_payload_bytes)
        writes.append(PointWrite(parse_point_id(item["id"]), payload))
        rows.append(vector_of(item["vector"], f"points[{index}].vector"))
    if len({len(row) for row in rows}) != 1:
        raise BadRequest("wrong vector dimension: all vectors of a batch must have one size")
    keys = [write.key for write in writes]
    if len(set(keys)) != len(keys):
        raise BadRequest("duplicate point ids in one batch")
    return writes, np.vstack(rows)


def search_query(body: dict[str, Any], raw_vector: Any) -> SearchQuery:
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest("params must be an object")
    threshold = body.get("score_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise BadRequest("score_threshold must be a number")
    return SearchQuery(
        vector=vector_of(raw_vector),
        limit=limit_of(body),
        offset=_int(body, "offset", 0, 0, MAX_OFFSET),
        filter=filter_of(body),
        score_threshold=None if threshold is None else float(threshold),
        with_payload=payload_selector(body.get("with_payload"), default=False),
        with_vector=with_vector_of(body.get("with_vector")),
        ef=_int(params, "hnsw_ef", 0, 0, 4096) or None,
        exact=bool(params.get("exact", False)),
    )


def index_request(body: dict[str, Any]) -> tuple[str, str]:
    field = body.get("field_name")
    if not isinstance(field, str) or not field:
        raise BadRequest("field_name must be a non-empty string")
    parse_index_field(field)
    schema = body.get("field_schema")
    if isinstance(schema, dict):
        schema = schema.get("type")
    if schema not in PAYLOAD_SCHEMAS:
        raise BadRequest(f"field_schema must be one of {', '.join(PAYLOAD_SCHEMAS)}")
    return field, str(schema)


def ids_of(body: dict[str, Any], field: str) -> list[str]:
    return parse_point_ids(body.get(field), field=field)


def offset_key(raw: Any) -> str | None:
    return None if raw is None else parse_point_id(raw)
