"""Qdrant request bodies → engine arguments, validated by hand on the hot path.

Bodies are parsed with orjson and turned straight into numpy float32; every problem is a
``BadRequest`` (400) naming the field, as Qdrant answers. No pydantic on the search path.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson

from bastion.vectors import fields
from bastion.vectors.engine import (
    DISTANCES,
    PAYLOAD_SCHEMAS,
    UPSERT_MODES,
    CollectionSpec,
    Distance,
    HnswParams,
    OrderBy,
    PayloadSelector,
    PointVectors,
    PointWrite,
    SearchQuery,
    UpsertMode,
    Vector,
    VectorParams,
    WithVector,
)
from bastion.vectors.errors import BadRequest, PayloadTooLarge
from bastion.vectors.filters import Filter, parse_filter, parse_index_field, parse_key
from bastion.vectors.ids import parse_point_id, parse_point_ids
from bastion.vectors.payloads import MAX_PAYLOAD_DEPTH, depth_exceeds

MAX_LIMIT = 10_000
MAX_OFFSET = 100_000
MAX_BATCH = 10_000
MAX_DIM = 65_536
MAX_VECTOR_WRAPPERS = 3
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


def int_field(body: dict[str, Any], field: str, default: int, low: int, high: int) -> int:
    """An optional integer field between ``low`` and ``high`` (a 400 naming it)."""
    return _int(body, field, default, low, high)


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


def check_vector_name(name: Any, where: str = "using") -> str | None:
    """A vector's name as a request gives it (None: not given; ``""``: the default
    vector). Whether the collection has it is the engine's to say (``spec.vector``)."""
    if name is None or isinstance(name, str):
        return name
    raise BadRequest(f"{where} must be a vector name (a string)")


def with_vector_of(raw: Any) -> WithVector:
    """``with_vector``: a boolean, or the names of the vectors wanted."""
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, list):
        for name in raw:
            if not isinstance(name, str):
                raise BadRequest("with_vector must be a boolean or a list of vector names")
        return tuple(raw)
    raise BadRequest("with_vector must be a boolean or a list of vector names")


def _same_name(found: str | None, name: Any, where: str) -> str:
    checked = check_vector_name(name, where) or ""
    if found is not None and found != checked:
        raise BadRequest(f"{where}: two vector names ({found!r}, {checked!r}) for one vector")
    return checked


def named_vector_of(raw: Any, where: str = "vector") -> tuple[str | None, Vector]:
    """One dense vector (a list of numbers, or Qdrant's ``{"name", "vector"}`` / ``{name:
    [...]}`` forms) and the name it came with (None: none).

    Wrappers are taken off in a loop, at most ``MAX_VECTOR_WRAPPERS`` of them: deeply
    nested wrappers must be a 400, never Python's recursion limit (a 500)."""
    name: str | None = None
    for _ in range(MAX_VECTOR_WRAPPERS + 1):
        if not isinstance(raw, dict):
            break
        if set(raw) <= {"name", "vector"} and "vector" in raw:
            name = _same_name(name, raw.get("name"), f"{where}.name")
            raw = raw["vector"]
        elif set(raw) == {"indices", "values"}:
            raise BadRequest(f"{where}: sparse vectors are not supported by Bastion")
        elif len(raw) == 1:
            ((key, raw),) = raw.items()
            name = _same_name(name, key, f"{where} name")
        else:
            raise BadRequest(f"{where}: several named vectors where one vector is expected")
    else:
        raise BadRequest(f"{where} is wrapped too deeply")
    return name, _dense(raw, where)


def _dense(raw: Any, where: str) -> Vector:
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


def _point_vectors(raw: Any, where: str) -> Vector | dict[str, Vector]:
    """A point's vector: a list (the unnamed vector), or ``{name: [...], …}``."""
    if not isinstance(raw, dict) or (set(raw) <= {"name", "vector"} and "vector" in raw):
        name, vector = named_vector_of(raw, where)
        return vector if name is None else {name: vector}
    if set(raw) == {"indices", "values"}:
        raise BadRequest(f"{where}: sparse vectors are not supported by Bastion")
    named: dict[str, Vector] = {}
    for name, value in raw.items():
        check_vector_name(name, f"{where} name")
        if value is None:
            continue
        named[name] = _dense(value, f"{where}.{name}" if name else where)
    return named


def _vector_params(raw: Any, where: str, hnsw: HnswParams) -> tuple[int, Distance, HnswParams]:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be {{size, distance}}")
    fields.only(raw, fields.VECTOR_PARAMS, where)
    size = raw.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_DIM:
        raise BadRequest(f"{where}.size must be an integer between 1 and {MAX_DIM}")
    distance = raw.get("distance")
    if distance not in DISTANCES:
        raise BadRequest(f"{where}.distance must be Cosine, Dot or Euclid")
    dist: Distance = distance
    return size, dist, _hnsw(raw.get("hnsw_config"), hnsw, f"{where}.hnsw_config")


def _hnsw(source: Any, hnsw: HnswParams, where: str) -> HnswParams:
    if source is None:
        return hnsw
    if not isinstance(source, dict):
        raise BadRequest(f"{where} must be an object")
    fields.only(source, fields.HNSW_CONFIG, where)
    return HnswParams(
        m=_int(source, "m", hnsw.m, 2, 128),
        ef_construct=_int(source, "ef_construct", hnsw.ef_construct, 4, 4096),
        full_scan_threshold=_int(source, "full_scan_threshold", hnsw.full_scan_threshold, 0, 10**9),
        ef=hnsw.ef,
    )


MAX_NAMED_VECTORS = 16


def collection_spec(name: str, body: dict[str, Any]) -> CollectionSpec:
    """``PUT /collections/{name}``: one unnamed vector ``{size, distance}`` (also as
    ``{"": {…}}``), or named vectors ``{"text": {size, distance}, "image": {…}}``, each
    with its own ``hnsw_config`` over the collection's."""
    fields.only(body, fields.CREATE_COLLECTION)
    vectors = body.get("vectors")
    if not isinstance(vectors, dict) or not vectors:
        raise BadRequest("vectors must be {size, distance} or {name: {size, distance}, ...}")
    hnsw = _hnsw(body.get("hnsw_config"), HnswParams(), "hnsw_config")
    if "size" not in vectors and list(vectors) == [""]:
        vectors = vectors[""]  # Qdrant's default vector, by its name (LangChain sends this)
    if "size" in vectors or "distance" in vectors:
        size, distance, own = _vector_params(vectors, "vectors", hnsw)
        return CollectionSpec(name=name, dim=size, distance=distance, hnsw=own)
    if len(vectors) > MAX_NAMED_VECTORS:
        raise BadRequest(f"vectors: at most {MAX_NAMED_VECTORS} named vectors")
    named: list[VectorParams] = []
    for vector_name, params in vectors.items():
        if len(vector_name) > 255 or _CONTROL.search(vector_name):
            raise BadRequest(
                "vectors: a vector name is at most 255 characters, without control characters"
            )
        size, distance, own = _vector_params(params, f"vectors.{vector_name}", hnsw)
        named.append(VectorParams(vector_name, size, distance, own))
    return CollectionSpec.of_named(name, named, hnsw)


def points_of(
    body: dict[str, Any], max_payload_bytes: int
) -> tuple[list[PointWrite], PointVectors]:
    """``{"points": [...]}`` or ``{"batch": {ids, vectors, payloads}}`` → writes and their
    vectors: a matrix (every point with a plain vector), or per point ``{name: vector}``."""
    fields.only(body, fields.UPSERT)
    if "batch" in body:
        batch = body["batch"]
        if not isinstance(batch, dict):
            raise BadRequest("batch must be an object")
        fields.only(batch, fields.BATCH, "batch")
        ids, raw_vectors = batch.get("ids"), batch.get("vectors")
        if isinstance(ids, list) and isinstance(raw_vectors, dict):
            raw_vectors = _batch_named(raw_vectors, len(ids))
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
    rows: list[Vector | dict[str, Vector]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or "vector" not in item:
            raise BadRequest(f"points[{index}] must have an id and a vector")
        fields.only(item, fields.POINT, f"points[{index}]")
        payload = item.get("payload")
        if payload is not None:
            check_payload(payload, f"points[{index}].payload", max_payload_bytes)
        writes.append(PointWrite(parse_point_id(item["id"]), payload))
        rows.append(_point_vectors(item["vector"], f"points[{index}].vector"))
    keys = [write.key for write in writes]
    if len(set(keys)) != len(keys):
        raise BadRequest("duplicate point ids in one batch")
    plain = [row for row in rows if isinstance(row, np.ndarray)]
    if len(plain) < len(rows):  # named vectors: the engine checks them against the collection
        return writes, [{"": row} if isinstance(row, np.ndarray) else row for row in rows]
    if len({len(row) for row in plain}) != 1:
        raise BadRequest("wrong vector dimension: all vectors of a batch must have one size")
    return writes, np.vstack(plain)


def _batch_named(raw: dict[str, Any], count: int) -> list[Any]:
    """A batch's ``vectors`` as ``{name: [vector per point]}`` → per point ``{name: vector}``."""
    for name, column in raw.items():
        check_vector_name(name, "batch.vectors name")
        if not isinstance(column, list) or len(column) != count:
            raise BadRequest(f"batch.vectors.{name} must hold one vector per id")
    return [{name: column[i] for name, column in raw.items()} for i in range(count)]


def search_query(body: dict[str, Any], raw_vector: Any, using: str | None = None) -> SearchQuery:
    """A search for ``raw_vector`` (a parsed vector, or as the body gives it) in the
    vector ``using`` (else the body's ``using``, or the name the vector is wrapped with)."""
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest("params must be an object")
    fields.only(params, fields.SEARCH_PARAMS, "params")
    if using is None:
        using = check_vector_name(body.get("using"))
    if not isinstance(raw_vector, np.ndarray):
        name, raw_vector = named_vector_of(raw_vector)
        using = agree_using(using, name, "vector")
    threshold = body.get("score_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise BadRequest("score_threshold must be a number")
    return SearchQuery(
        vector=raw_vector,
        limit=limit_of(body),
        offset=_int(body, "offset", 0, 0, MAX_OFFSET),
        filter=filter_of(body),
        score_threshold=None if threshold is None else float(threshold),
        with_payload=payload_selector(body.get("with_payload"), default=False),
        with_vector=with_vector_of(body.get("with_vector")),
        ef=_int(params, "hnsw_ef", 0, 0, 4096) or None,
        exact=bool(params.get("exact", False)),
        using=using or "",
    )


def agree_using(using: str | None, name: str | None, where: str) -> str | None:
    """The vector a request searches: ``using``, or the name its vector came with."""
    if name is None:
        return using
    if using is not None and using != name:
        raise BadRequest(f"{where} names the vector {name!r}, but the request uses {using!r}")
    return name


def vectors_update(
    body: dict[str, Any],
) -> tuple[list[str], list[dict[str, Vector]], Filter | None]:
    """``update_vectors``: ``{"points": [{id, vector}], "update_filter"}`` → the points,
    each one's ``{name: vector}`` (a plain vector is the unnamed one), the filter."""
    fields.only(body, fields.UPDATE_VECTORS)
    items = body.get("points")
    if not isinstance(items, list) or not items:
        raise BadRequest("points must be a non-empty list of {id, vector}")
    if len(items) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} points per request")
    keys: list[str] = []
    vectors: list[dict[str, Vector]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or "vector" not in item:
            raise BadRequest(f"points[{index}] must have an id and a vector")
        fields.only(item, fields.POINT_VECTORS, f"points[{index}]")
        keys.append(parse_point_id(item["id"]))
        given = _point_vectors(item["vector"], f"points[{index}].vector")
        vectors.append({"": given} if isinstance(given, np.ndarray) else given)
    raw = body.get("update_filter")
    return keys, vectors, None if raw is None else parse_filter(raw)


def vectors_deletion(body: dict[str, Any]) -> tuple[list[str], list[str] | None, Filter | None]:
    """``delete_vectors``: ``{"vector": [names], "points": [ids] | "filter"}``."""
    fields.only(body, fields.DELETE_VECTORS)
    names = body.get("vector")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise BadRequest("vector must be a non-empty list of vector names")
    keys, flt = points_or_filter(body)
    return names, keys, flt


def upsert_options(body: dict[str, Any]) -> tuple[Filter | None, UpsertMode]:
    """Upsert's ``update_filter`` (an existing point is changed only when it matches) and
    ``update_mode`` (``insert_only``: existing points are left as they are;
    ``update_only``: ids that do not exist are not created)."""
    raw = body.get("update_filter")
    update_filter = None if raw is None else parse_filter(raw)
    mode = body.get("update_mode")
    if mode is None:
        return update_filter, "upsert"
    for known in UPSERT_MODES:
        if mode == known:
            return update_filter, known
    raise BadRequest(f"update_mode must be one of {', '.join(UPSERT_MODES)}")


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


def points_or_filter(body: dict[str, Any]) -> tuple[list[str] | None, Filter | None]:
    """Qdrant's points selector: ``points`` (ids) or ``filter``, exactly one of them."""
    if body.get("points") is not None:
        if body.get("filter") is not None:
            raise BadRequest("give points (ids) or a filter, not both")
        return ids_of(body, "points"), None
    if body.get("filter") is not None:
        return None, parse_filter(body["filter"])
    raise BadRequest("points (ids) or a filter is required")


def order_by_of(raw: Any) -> OrderBy:
    """Scroll's ``order_by``: a key, or ``{key, direction: asc|desc, start_from}``."""
    if isinstance(raw, str):
        raw = {"key": raw}
    if not isinstance(raw, dict):
        raise BadRequest("order_by must be a payload key or {key, direction, start_from}")
    fields.only(raw, fields.ORDER_BY, "order_by")
    key = raw.get("key")
    parse_key(key)
    direction = raw.get("direction") or "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest("order_by.direction must be asc or desc")
    start = raw.get("start_from")
    if start is not None and (isinstance(start, bool) or not isinstance(start, int | float)):
        raise BadRequest("order_by.start_from must be a number (datetimes are not supported)")
    return OrderBy(str(key), direction == "desc", None if start is None else float(start))


_FIXED_HNSW = ("m", "ef_construct")  # changing them would rebuild the graph


def collection_update(body: dict[str, Any], spec: CollectionSpec) -> HnswParams:
    """``update_collection``: the parameters that apply at once (``full_scan_threshold``;
    ``m`` / ``ef_construct`` only at their current values); every other one is a 400. A
    collection of named vectors takes them for the collection (every vector)."""
    current = spec.hnsw
    fields.only(body, fields.UPDATE_COLLECTION)
    sources: list[tuple[str, Any]] = [("hnsw_config", body.get("hnsw_config"))]
    vectors = body.get("vectors")
    if vectors is not None:
        if not isinstance(vectors, dict):
            raise BadRequest("vectors must be {name: {hnsw_config}}")
        for vector_name, params in vectors.items():
            spec.vector(vector_name, "vectors")
            where = "vectors." + (vector_name or '""')
            if spec.named:
                raise BadRequest(
                    f"{where}: Bastion changes the parameters of a collection of named "
                    "vectors for all of them: use hnsw_config"
                )
            if not isinstance(params, dict):
                raise BadRequest(f"{where} must be an object")
            fields.only(params, fields.VECTOR_UPDATE, where)
            sources.append((f"{where}.hnsw_config", params.get("hnsw_config")))
    if body.get("params") is not None:
        if not isinstance(body["params"], dict):
            raise BadRequest("params must be an object")
        fields.only(body["params"], fields.COLLECTION_PARAMS, "params")
    hnsw = current
    for where, source in sources:
        if source is None:
            continue
        if not isinstance(source, dict):
            raise BadRequest(f"{where} must be an object")
        fields.only(source, fields.HNSW_CONFIG, where)
        for name in _FIXED_HNSW:
            value = source.get(name)
            if value is not None and value != getattr(current, name):
                raise BadRequest(
                    f"{where}.{name} cannot be changed by Bastion (the graph would have to be "
                    "rebuilt): create a new collection"
                )
        hnsw = HnswParams(
            m=hnsw.m,
            ef_construct=hnsw.ef_construct,
            full_scan_threshold=_int(
                source, "full_scan_threshold", hnsw.full_scan_threshold, 0, 10**9
            ),
            ef=hnsw.ef,
        )
    return hnsw
