"""The data plane: a Qdrant REST subset over the vector engine.

Every route calls ``authorize`` first (before reading the body or revealing whether a
collection exists), then parses the body with orjson, then calls the engine of the
principal's tenant. Answers use Qdrant's envelope ``{"result", "status": "ok", "time"}``;
errors are rendered by ``api.problems`` in Qdrant's ``{"status": {"error"}}`` envelope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bastion.api.guard import authorize, meter, runtime, tenant_rules
from bastion.api.routing import RouteTable
from bastion.audit import AuditBuffer
from bastion.authz import Effect, Resource, decide
from bastion.domain import Principal
from bastion.vectors import (
    BadRequest,
    CollectionInfo,
    CollectionNotFound,
    PointRecord,
    ScoredRecord,
    VectorEngine,
    key_to_id,
)
from bastion.vectors import models as body_models
from bastion.vectors.audit import record_export, resource_of

log = logging.getLogger("bastion.vectors.api")
table = RouteTable()  # how requests reach these endpoints: ``api.routing``
_route = table.route


_EXPORT_LOG_EVERY = 10_000
_EXPORT_METER_EVERY = 100  # points counted at once against the export baseline


def _engine(request: Request) -> VectorEngine:
    engine: VectorEngine = request.app.state.vectors
    return engine


def _ok(result: Any, started: float) -> Response:
    body = {"result": result, "status": "ok", "time": time.perf_counter() - started}
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), 200, media_type="application/json"
    )


async def _body(request: Request) -> dict[str, Any]:
    return body_models.load_json(await request.body())


def _searched(request: Request, principal: Principal, name: str, kind: str, found: int) -> None:
    """Searches are audited as per-second counts per caller, collection and kind (writes
    are audited by the engine, in the transaction of the change)."""
    buffer: AuditBuffer = request.app.state.audit_buffer
    buffer.count_search(principal, resource_of(name), kind, found)
    meter(request, principal, "query", found)  # continuous evaluation of volume


def _record_json(point: PointRecord) -> dict[str, Any]:
    return {"id": key_to_id(point.key), "payload": point.payload, "vector": point.vector}


def _scored_json(found: list[ScoredRecord]) -> list[dict[str, Any]]:
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


def _info_json(info: CollectionInfo) -> dict[str, Any]:
    spec = info.spec
    hnsw = {
        "m": spec.hnsw.m,
        "ef_construct": spec.hnsw.ef_construct,
        "full_scan_threshold": spec.hnsw.full_scan_threshold,
        "max_indexing_threads": 0,
        "on_disk": False,
    }
    return {
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": info.indexed_vectors_count,
        "points_count": info.points_count,
        "segments_count": 1,
        "config": {
            "params": {
                "vectors": {"size": spec.dim, "distance": spec.distance},
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
    names = await _engine(request).list_collections(principal.tenant_id)
    visible = await _readable(request, principal, names)
    return _ok({"collections": [{"name": name} for name in visible]}, started)


async def _readable(request: Request, principal: Principal, names: list[str]) -> list[str]:
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
    info = await _engine(request).get_collection(principal.tenant_id, name)
    return _ok(_info_json(info), started)


@_route("GET", "/collections/{name}/exists", "Whether the collection exists")
async def collection_exists(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.read", collection=name)
    exists = await _engine(request).collection_exists(principal.tenant_id, name)
    return _ok({"exists": exists}, started)


@_route("PUT", "/collections/{name}", "Create a collection")
async def create_collection(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.create", collection=name)
    spec = body_models.collection_spec(
        body_models.check_collection_name(name), await _body(request)
    )
    await _engine(request).create_collection(principal.tenant_id, spec, actor=principal.id)
    return _ok(True, started)


@_route("DELETE", "/collections/{name}", "Delete a collection and its points")
async def delete_collection(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.delete", collection=name)
    deleted = await _engine(request).delete_collection(
        principal.tenant_id, name, actor=principal.id
    )
    return _ok(deleted, started)


@_route("PUT", "/collections/{name}/index", "Create a payload index")
async def create_payload_index(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "indexes.write", collection=name)
    field, schema = body_models.index_request(await _body(request))
    await _engine(request).create_payload_index(
        principal.tenant_id, name, field, schema, actor=principal.id
    )
    return _ok(_update_result(), started)


# -- points: writes --------------------------------------------------------------------


@_route("PUT", "/collections/{name}/points", "Upsert points (all-or-nothing)")
async def upsert_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.write", collection=name)
    limit = request.app.state.settings.max_payload_bytes
    writes, vectors = body_models.points_of(await _body(request), limit)
    await _engine(request).upsert(principal.tenant_id, name, writes, vectors, actor=principal.id)
    return _ok(_update_result(), started)


@_route("POST", "/collections/{name}/points/delete", "Delete points by ids or filter")
async def delete_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.write", collection=name)
    body = await _body(request)
    engine = _engine(request)
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
    return _ok(_update_result(), started)


# -- points: reads ---------------------------------------------------------------------


@_route("POST", "/collections/{name}/points", "Retrieve points by id")
async def retrieve_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.read", collection=name)
    body = await _body(request)
    found = await _engine(request).retrieve(
        principal.tenant_id,
        name,
        body_models.ids_of(body, "ids"),
        with_payload=body_models.payload_selector(body.get("with_payload"), default=True),
        with_vector=body_models.with_vector_of(body.get("with_vector")),
    )
    return _ok([_record_json(point) for point in found], started)


@_route("POST", "/collections/{name}/points/scroll", "Page through points in id order")
async def scroll_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.read", collection=name)
    body = await _body(request)
    if body.get("order_by") is not None:
        raise BadRequest("order_by is not supported")
    page = await _engine(request).scroll(
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
        "points": [_record_json(point) for point in page.points],
        "next_page_offset": None if page.next_key is None else key_to_id(page.next_key),
    }
    return _ok(result, started)


@_route("POST", "/collections/{name}/points/count", "Count points (exact)")
async def count_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.read", collection=name)
    body = await _body(request)
    count = await _engine(request).count(
        principal.tenant_id, name, filter=body_models.filter_of(body)
    )
    return _ok({"count": count}, started)


@_route("POST", "/collections/{name}/points/search", "Nearest neighbours (legacy search)")
async def search_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.search", collection=name)
    body = await _body(request)
    if "vector" not in body:
        raise BadRequest("search needs a vector")
    query = body_models.search_query(body, body["vector"])
    found = await _engine(request).search(principal.tenant_id, name, query)
    _searched(request, principal, name, "search", len(found))
    return _ok(_scored_json(found), started)


@_route("POST", "/collections/{name}/points/query", "Universal query (nearest only)")
async def query_points(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.search", collection=name)
    body = await _body(request)
    if body.get("prefetch") is not None or body.get("lookup_from") is not None:
        raise BadRequest("prefetch and lookup_from are not supported")
    raw = body.get("query")
    engine = _engine(request)
    if raw is None:  # no query: the first points in id order, like Qdrant
        page = await engine.scroll(
            principal.tenant_id,
            name,
            filter=body_models.filter_of(body),
            offset_key=None,
            limit=body_models.limit_of(body),
            with_payload=body_models.payload_selector(body.get("with_payload"), default=False),
            with_vector=body_models.with_vector_of(body.get("with_vector")),
        )
        points = [{**_record_json(p), "version": 0, "score": 0.0} for p in page.points]
        return _ok({"points": points}, started)
    if isinstance(raw, dict) and "nearest" not in raw:
        raise BadRequest("only nearest-vector queries are supported")
    query = body_models.search_query(body, raw)
    found = await engine.search(principal.tenant_id, name, query)
    _searched(request, principal, name, "query", len(found))
    return _ok({"points": _scored_json(found)}, started)


# -- export ------------------------------------------------------------------------------


@_route("POST", "/collections/{name}/export", "Export every point as NDJSON (admin, aal3, audited)")
async def export_points(request: Request, name: str) -> StreamingResponse:
    principal = await authorize(request, "points.export", collection=name)
    engine = _engine(request)
    if not await engine.collection_exists(principal.tenant_id, name):
        raise CollectionNotFound(name)

    async def lines() -> AsyncIterator[bytes]:
        exported = 0
        outcome = "interrupted"
        try:
            async for point in engine.export(principal.tenant_id, name):
                yield orjson.dumps(_record_json(point)) + b"\n"
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
