"""The data plane: a Qdrant REST subset over the vector engine.

Every route calls ``authorize`` first (before reading the body or revealing whether a
collection exists), then parses the body with orjson, then calls the engine of the
principal's tenant. Answers use Qdrant's envelope ``{"result", "status": "ok", "time"}``;
errors are rendered by ``api.problems`` in Qdrant's ``{"status": {"error"}}`` envelope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from bastion.api.guard import authorize, meter, runtime, tenant_rules
from bastion.api.routing import RouteTable
from bastion.audit import AuditBuffer
from bastion.authz import Effect, Resource, decide
from bastion.domain import Principal
from bastion.vectors import (
    BadRequest,
    CollectionExists,
    CollectionInfo,
    CollectionNotFound,
    CollectionSpec,
    HnswParams,
    PointRecord,
    ScoredRecord,
    VectorEngine,
    fields,
    key_to_id,
)
from bastion.vectors import models as body_models
from bastion.vectors.aliases import Aliases
from bastion.vectors.audit import record_export, resource_of
from bastion.vectors.payloads import Operation, payload_change

log = logging.getLogger("bastion.vectors.api")
table = RouteTable()  # how requests reach these endpoints: ``api.routing``
_route = table.route


_EXPORT_LOG_EVERY = 10_000
_EXPORT_METER_EVERY = 100  # points counted at once against the export baseline


def engine_of(request: Request) -> VectorEngine:
    engine: VectorEngine = request.app.state.vectors
    return engine


def ok(result: Any, started: float) -> Response:
    if _weight(result) > _ENCODE_OFF_LOOP_WEIGHT:
        return _EncodedOffLoop(result, started)
    return Response(_envelope(result, started), 200, media_type="application/json")


def _envelope(result: Any, started: float) -> bytes:
    body = {"result": result, "status": "ok", "time": time.perf_counter() - started}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


# An answer heavier than this (points x (64 + vector length)) is encoded in a worker
# thread: 10,000 points with vectors take orjson tens of ms, which on the event loop
# would stall every other request meanwhile (issue 11, item 5).
_ENCODE_OFF_LOOP_WEIGHT = 16_384


def _weight(result: Any) -> int:
    points = result.get("points") if isinstance(result, dict) else result
    if not isinstance(points, list) or not points:
        return 0
    first = points[0]
    vector = first.get("vector") if isinstance(first, dict) else None
    if isinstance(vector, dict):  # named vectors
        return len(points) * (64 + sum(len(v) for v in vector.values() if isinstance(v, list)))
    return len(points) * (64 + (len(vector) if isinstance(vector, list) else 0))


class _EncodedOffLoop(Response):
    """Qdrant's envelope around a large result, encoded in a worker thread when sent."""

    media_type = "application/json"

    def __init__(self, result: Any, started: float) -> None:
        super().__init__(b"", 200)
        self._result = result
        self._started = started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.body = await run_in_threadpool(_envelope, self._result, self._started)
        self.init_headers()  # the length of the encoded body
        await super().__call__(scope, receive, send)


# A body larger than this is parsed (and an upsert's points checked) in a worker thread:
# ~1 ms of orjson and numpy on the event loop would stall every other request meanwhile.
_PARSE_OFF_LOOP_BYTES = 256 * 1024


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON body; a large one, and a large ``filter`` in it, parsed in a worker thread
    (``body_models.filter_of`` then finds the filter parsed)."""
    raw = await request.body()
    if len(raw) > _PARSE_OFF_LOOP_BYTES:
        body = await run_in_threadpool(body_models.load_json, raw)
    else:
        body = body_models.load_json(raw)
    if body_models.is_heavy_filter(body):
        return await run_in_threadpool(body_models.parse_heavy_filter, body)
    return body


def searched(request: Request, principal: Principal, name: str, kind: str, found: int) -> None:
    """Searches are audited as per-second counts per caller, collection and kind (writes
    are audited by the engine, in the transaction of the change)."""
    buffer: AuditBuffer = request.app.state.audit_buffer
    buffer.count_search(principal, resource_of(name), kind, found)
    meter(request, principal, "query", found)  # continuous evaluation of volume


def record_json(point: PointRecord) -> dict[str, Any]:
    return {"id": key_to_id(point.key), "payload": point.payload, "vector": point.vector}


def scored_json(found: list[ScoredRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": key_to_id(point.key),
            "version": 0,
            "score": point.score,
            "payload": point.payload,
            "vector": point.vector,
        }
        for point in found
    ]


def _update_result(operation_id: int = 0) -> dict[str, Any]:
    return {"operation_id": operation_id, "status": "completed"}


def _hnsw_json(hnsw: HnswParams) -> dict[str, Any]:
    return {
        "m": hnsw.m,
        "ef_construct": hnsw.ef_construct,
        "full_scan_threshold": hnsw.full_scan_threshold,
        "max_indexing_threads": 0,
        "on_disk": False,
    }


def _vectors_json(spec: CollectionSpec) -> dict[str, Any]:
    """Qdrant's ``params.vectors``: ``{size, distance}``, or ``{name: {size, distance}}``
    for named vectors (with the ``hnsw_config`` a vector has of its own)."""
    if not spec.named:
        return {"size": spec.dim, "distance": spec.distance}
    named: dict[str, Any] = {}
    for params in spec.named:
        named[params.name] = {"size": params.dim, "distance": params.distance}
        if params.hnsw != spec.hnsw:
            named[params.name]["hnsw_config"] = {
                field: value
                for field, value in _hnsw_json(params.hnsw).items()
                if value != _hnsw_json(spec.hnsw)[field]
            }
    return named


def info_json(info: CollectionInfo) -> dict[str, Any]:
    spec = info.spec
    hnsw = _hnsw_json(spec.hnsw)
    return {
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": info.indexed_vectors_count,
        "points_count": info.points_count,
        "segments_count": 1,
        "config": {
            "params": {
                "vectors": _vectors_json(spec),
                "shard_number": 1,
                "replication_factor": 1,
                "write_consistency_factor": 1,
                "on_disk_payload": False,
            },
            "hnsw_config": hnsw,
            "optimizer_config": {
                "deleted_threshold": 0.2,
                "vacuum_min_vector_number": 1000,
                "default_segment_number": 1,
                "flush_interval_sec": 0,
            },
            "wal_config": {"wal_capacity_mb": 0, "wal_segments_ahead": 0},
        },
        "payload_schema": {
            field: {"data_type": schema, "points": count}
            for field, (schema, count) in info.payload_schema.items()
        },
        "created_at": info.created_at.isoformat() if info.created_at else None,
    }


# -- collections ---------------------------------------------------------------------


@_route("GET", "/collections", "List the collections the caller may read")
async def list_collections(request: Request) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.read")
    names = await engine_of(request).list_collections(principal.tenant_id)
    visible = await readable(request, principal, names)
    return ok({"collections": [{"name": name} for name in visible]}, started)


async def readable(request: Request, principal: Principal, names: list[str]) -> list[str]:
    """Names the principal's grants cover, decided by ``authz.decide`` (the one door)."""
    policy, roles = await tenant_rules(request, principal.tenant_id)
    now = request.app.state.clock.now()
    return [
        name
        for name in names
        if decide(
            principal,
            "collections.read",
            Resource(tenant_id=principal.tenant_id, collection=name),
            policy=policy,
            now=now,
            custom_roles=roles,
        ).effect
        is Effect.ALLOW
    ]


@_route("GET", "/collections/{name}", "Collection info (Qdrant CollectionInfo)")
async def get_collection(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.read", collection=name)
    info = await engine_of(request).get_collection(principal.tenant_id, name)
    return ok(info_json(info), started)


@_route("GET", "/collections/{name}/exists", "Whether the collection exists")
async def collection_exists(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.read", collection=name)
    exists = await engine_of(request).collection_exists(principal.tenant_id, name)
    return ok({"exists": exists}, started)


@_route("PUT", "/collections/{name}", "Create a collection", aliased=False)
async def create_collection(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.create", collection=name)
    spec = body_models.collection_spec(
        body_models.check_collection_name(name), await read_body(request)
    )
    aliases: Aliases = request.app.state.aliases
    if name in await aliases.of_tenant(principal.tenant_id):
        raise CollectionExists(name)  # an alias has that name (Qdrant refuses it too)
    await engine_of(request).create_collection(principal.tenant_id, spec, actor=principal.id)
    return ok(True, started)


@_route("PATCH", "/collections/{name}", "Change the parameters that apply at once", aliased=False)
async def update_collection(request: Request, name: str) -> Response:
    """``update_collection``: defining a collection's parameters, as at creation."""
    started = time.perf_counter()
    principal = await authorize(request, "collections.create", collection=name)
    body = await read_body(request)
    engine = engine_of(request)
    spec = await engine.collection_spec(principal.tenant_id, name)
    hnsw = body_models.collection_update(body, spec)
    if hnsw != spec.hnsw:
        await engine.update_collection(principal.tenant_id, name, hnsw, actor=principal.id)
    return ok(True, started)


@_route("DELETE", "/collections/{name}", "Delete a collection and its points", aliased=False)
async def delete_collection(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.delete", collection=name)
    deleted = await engine_of(request).delete_collection(
        principal.tenant_id, name, actor=principal.id
    )
    if deleted:  # its aliases go with it
        aliases: Aliases = request.app.state.aliases
        await aliases.forget_collection(principal.tenant_id, name)
    return ok(deleted, started)


@_route("PUT", "/collections/{name}/index", "Create a payload index")
async def create_payload_index(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "indexes.write", collection=name)
    field, schema = body_models.index_request(await read_body(request))
    await engine_of(request).create_payload_index(
        principal.tenant_id, name, field, schema, actor=principal.id
    )
    return ok(_update_result(), started)


@_route(
    "DELETE", "/collections/{name}/index/{field_name:anything}", "Delete a payload index (Qdrant's)"
)
async def delete_payload_index(request: Request, name: str, field_name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "indexes.write", collection=name)
    await engine_of(request).delete_payload_index(
        principal.tenant_id, name, field_name, actor=principal.id
    )
    return ok(_update_result(), started)


# -- points: writes --------------------------------------------------------------------


@_route("PUT", "/collections/{name}/points", "Upsert points (all-or-nothing)")
async def upsert_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.write", collection=name)
    limit = request.app.state.settings.max_payload_bytes
    raw = await request.body()
    if len(raw) > _PARSE_OFF_LOOP_BYTES:
        body = await run_in_threadpool(body_models.load_json, raw)
        writes, vectors = await run_in_threadpool(lambda: body_models.points_of(body, limit))
    else:
        body = body_models.load_json(raw)
        writes, vectors = body_models.points_of(body, limit)
    update_filter, mode = body_models.upsert_options(body)
    await engine_of(request).upsert(
        principal.tenant_id,
        name,
        writes,
        vectors,
        actor=principal.id,
        update_filter=update_filter,
        mode=mode,
    )
    return ok(_update_result(), started)


@_route("PUT", "/collections/{name}/points/vectors", "Replace some vectors of existing points")
async def update_vectors(request: Request, name: str) -> Response:
    """Qdrant's ``update_vectors``: the named vectors given replace the stored ones; the
    point's other vectors and payload stay (a point that does not exist is a 404)."""
    started = time.perf_counter()
    principal = await authorize(request, "points.write", collection=name)
    keys, vectors, update_filter = body_models.vectors_update(await read_body(request))
    await engine_of(request).update_vectors(
        principal.tenant_id, name, keys, vectors, actor=principal.id, update_filter=update_filter
    )
    return ok(_update_result(), started)


@_route("POST", "/collections/{name}/points/vectors/delete", "Delete named vectors of points")
async def delete_vectors(request: Request, name: str) -> Response:
    """Qdrant's ``delete_vectors``: the named vectors are taken off the points (by ids or
    by filter); the points and their other vectors stay."""
    started = time.perf_counter()
    principal = await authorize(request, "points.write", collection=name)
    names, keys, flt = body_models.vectors_deletion(await read_body(request))
    await engine_of(request).delete_vectors(
        principal.tenant_id, name, names, keys=keys, filter=flt, actor=principal.id
    )
    return ok(_update_result(), started)


@_route("POST", "/collections/{name}/points/delete", "Delete points by ids or filter")
async def delete_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.write", collection=name)
    body = await read_body(request)
    fields.only(body, fields.DELETE)
    engine = engine_of(request)
    by_filter = body.get("points") is None
    if not by_filter:
        keys = body_models.ids_of(body, "points")
        await engine.delete_points(principal.tenant_id, name, keys=keys, actor=principal.id)
    elif body.get("filter") is not None:
        await engine.delete_points(
            principal.tenant_id, name, filter=body_models.filter_of(body), actor=principal.id
        )
    else:
        raise BadRequest("delete needs points (ids) or a filter")
    return ok(_update_result(), started)


async def _update_payload(
    request: Request, name: str, operation: Operation, allowed: Mapping[str, fields.Check]
) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.write", collection=name)
    body = await read_body(request)
    fields.only(body, allowed)
    limit = request.app.state.settings.max_payload_bytes
    if operation in ("set", "overwrite") and body.get("payload") is not None:
        body_models.check_payload(body["payload"], "payload", limit)  # depth, size, JSON
    change = payload_change(operation, body, limit)
    keys, flt = body_models.points_or_filter(body)
    await engine_of(request).update_payload(
        principal.tenant_id, name, change, keys=keys, filter=flt, actor=principal.id
    )
    return ok(_update_result(), started)


@_route("POST", "/collections/{name}/points/payload", "Set payload keys (merge)")
async def set_payload(request: Request, name: str) -> Response:
    return await _update_payload(request, name, "set", fields.SET_PAYLOAD)


@_route("PUT", "/collections/{name}/points/payload", "Overwrite the whole payload")
async def overwrite_payload(request: Request, name: str) -> Response:
    return await _update_payload(request, name, "overwrite", fields.OVERWRITE_PAYLOAD)


@_route("POST", "/collections/{name}/points/payload/delete", "Delete payload keys")
async def delete_payload(request: Request, name: str) -> Response:
    return await _update_payload(request, name, "delete", fields.DELETE_PAYLOAD)


@_route("POST", "/collections/{name}/points/payload/clear", "Clear the payload")
async def clear_payload(request: Request, name: str) -> Response:
    return await _update_payload(request, name, "clear", fields.DELETE)


# -- points: reads ---------------------------------------------------------------------


@_route("POST", "/collections/{name}/points", "Retrieve points by id")
async def retrieve_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.read", collection=name)
    body = await read_body(request)
    fields.only(body, fields.RETRIEVE)
    found = await engine_of(request).retrieve(
        principal.tenant_id,
        name,
        body_models.ids_of(body, "ids"),
        with_payload=body_models.payload_selector(body.get("with_payload"), default=True),
        with_vector=body_models.with_vector_of(body.get("with_vector")),
    )
    return ok([record_json(point) for point in found], started)


@_route("POST", "/collections/{name}/points/scroll", "Page through points in id order")
async def scroll_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.read", collection=name)
    body = await read_body(request)
    fields.only(body, fields.SCROLL)
    if body.get("order_by") is not None:
        return await _scroll_ordered(request, principal, name, body, started)
    page = await engine_of(request).scroll(
        principal.tenant_id,
        name,
        filter=body_models.filter_of(body),
        offset_key=body_models.offset_key(body.get("offset")),
        limit=body_models.limit_of(body),
        with_payload=body_models.payload_selector(body.get("with_payload"), default=True),
        with_vector=body_models.with_vector_of(body.get("with_vector")),
    )
    meter(request, principal, "scroll", len(page.points))  # continuous evaluation of volume
    result = {
        "points": [record_json(point) for point in page.points],
        "next_page_offset": None if page.next_key is None else key_to_id(page.next_key),
    }
    return ok(result, started)


async def _scroll_ordered(
    request: Request, principal: Principal, name: str, body: dict[str, Any], started: float
) -> Response:
    """Scroll by a payload key's numbers: pages continue with ``order_by.start_from``
    (``next_page_offset`` is always null, as in Qdrant)."""
    if body.get("offset") is not None:
        raise BadRequest("offset cannot be used with order_by: use order_by.start_from")
    found = await engine_of(request).scroll_ordered(
        principal.tenant_id,
        name,
        filter=body_models.filter_of(body),
        order_by=body_models.order_by_of(body["order_by"]),
        limit=body_models.limit_of(body),
        with_payload=body_models.payload_selector(body.get("with_payload"), default=True),
        with_vector=body_models.with_vector_of(body.get("with_vector")),
    )
    points = [{**record_json(point), "order_value": value} for point, value in found]
    return ok({"points": points, "next_page_offset": None}, started)


@_route("POST", "/collections/{name}/points/count", "Count points (exact)")
async def count_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.read", collection=name)
    body = await read_body(request)
    fields.only(body, fields.COUNT)
    count = await engine_of(request).count(
        principal.tenant_id, name, filter=body_models.filter_of(body)
    )
    return ok({"count": count}, started)


@_route("POST", "/collections/{name}/points/search", "Nearest neighbours (legacy search)")
async def search_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.search", collection=name)
    body = await read_body(request)
    fields.only(body, fields.SEARCH)
    if "vector" not in body:
        raise BadRequest("search needs a vector")
    query = body_models.search_query(body, body["vector"])
    found = await engine_of(request).search(principal.tenant_id, name, query)
    searched(request, principal, name, "search", len(found))
    return ok(scored_json(found), started)


# -- export ------------------------------------------------------------------------------


@_route("POST", "/collections/{name}/export", "Export every point as NDJSON (admin, aal3, audited)")
async def export_points(request: Request, name: str) -> StreamingResponse:
    principal = await authorize(request, "points.export", collection=name)
    engine = engine_of(request)
    if not await engine.collection_exists(principal.tenant_id, name):
        raise CollectionNotFound(name)

    async def lines() -> AsyncIterator[bytes]:
        exported = 0
        outcome = "interrupted"
        try:
            async for point in engine.export(principal.tenant_id, name):
                yield orjson.dumps(record_json(point)) + b"\n"
                exported += 1
                if exported % _EXPORT_METER_EVERY == 0:  # continuous evaluation of volume
                    meter(request, principal, "export", _EXPORT_METER_EVERY)
                if exported % _EXPORT_LOG_EVERY == 0:
                    log.info("export of %s: %d points sent", name, exported)
            outcome = "complete"
        finally:
            meter(request, principal, "export", exported % _EXPORT_METER_EVERY)
            log.info("export of %s finished (%s): %d points", name, outcome, exported)
            await run_in_threadpool(_record_export, request, principal, name, exported)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _record_export(request: Request, principal: Principal, name: str, count: int) -> None:
    rt = runtime(request)
    record_export(
        rt.db,
        tenant_id=principal.tenant_id,
        collection=name,
        actor=principal.id,
        count=count,
        now=rt.clock.now(),
    )
