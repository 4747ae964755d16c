"""The query side of the data plane beyond one vector: the universal query (by vector, by
point id, recommend, MMR), recommend, and the batches of search, query and recommend.

Each request is authorised once (``points.search``), every sub-request is parsed before
any runs (a bad one is a 400 and nothing ran), and each search is counted for the audit
as the single ones are. Point ids given as examples are looked up (their stored vectors)
and left out of the results, as Qdrant does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from bastion.api.dataplane import (
    engine_of,
    ok,
    read_body,
    record_json,
    scored_json,
    searched,
    table,
)
from bastion.api.dataplane_strategies import as_asked, by_strategy
from bastion.api.guard import authorize
from bastion.domain import Principal
from bastion.vectors import (
    BadRequest,
    Distance,
    PayloadSelector,
    ScoredRecord,
    SearchQuery,
    VectorEngine,
    fields,
    key_to_id,
)
from bastion.vectors import models as body_models
from bastion.vectors.checks import check_query
from bastion.vectors.errors import PointNotFound
from bastion.vectors.filters import Filter, HasId, parse_key
from bastion.vectors.live import select_payload
from bastion.vectors.predicates import extract
from bastion.vectors.query_plan import (
    Mmr,
    Plan,
    mmr_order,
    query_plan,
    recommend_plan,
    vector_plan,
)
from bastion.vectors.query_plan import search_vector as recommendation

MAX_SEARCHES = 100  # sub-requests of one batch
_NO_PAYLOAD = PayloadSelector(enabled=False)
Parsed = tuple[dict[str, Any], Plan | None]


def _parse_query(body: Any, where: str = "") -> Parsed:
    if not isinstance(body, dict):
        raise BadRequest(f"{where or 'the body'} must be an object")
    fields.only(body, fields.QUERY, where)
    return body, query_plan(body.get("query"))


def _parse_recommend(body: Any, where: str = "") -> Parsed:
    if not isinstance(body, dict):
        raise BadRequest(f"{where or 'the body'} must be an object")
    fields.only(body, fields.RECOMMEND, where)
    examples = {key: body.get(key) for key in ("positive", "negative", "strategy")}
    return body, recommend_plan(examples, fields.RECOMMEND_INPUT)


def _parse_search(body: Any, where: str = "") -> Parsed:
    if not isinstance(body, dict):
        raise BadRequest(f"{where or 'the body'} must be an object")
    fields.only(body, fields.SEARCH, where)
    if "vector" not in body:
        raise BadRequest(f"{where or 'search'} needs a vector")
    return body, vector_plan(body["vector"], "vector")


def _batch(body: dict[str, Any], parse: Callable[[Any, str], Parsed]) -> list[Parsed]:
    fields.only(body, fields.SEARCHES)
    searches = body.get("searches")
    if not isinstance(searches, list) or not 1 <= len(searches) <= MAX_SEARCHES:
        raise BadRequest(f"searches must be a list of 1 to {MAX_SEARCHES} requests")
    return [parse(item, f"searches[{i}]") for i, item in enumerate(searches)]


async def _stored_vectors(
    engine: VectorEngine, tenant_id: str, name: str, keys: list[str], using: str
) -> dict[str, Any]:
    """The vector ``using`` of each example point (a 404 for a point that does not
    exist, a 400 for one without that vector)."""
    if not keys:
        return {}
    found = await engine.retrieve(
        tenant_id, name, keys, with_payload=_NO_PAYLOAD, with_vector=(using,)
    )
    vectors: dict[str, Any] = {}
    for point in found:
        vector = point.vector.get(using) if isinstance(point.vector, dict) else point.vector
        if vector is None:
            raise BadRequest(f"point {key_to_id(point.key)} has no vector {using!r}")
        vectors[point.key] = np.asarray(vector, np.float32)
    for key in keys:
        if key not in vectors:
            raise PointNotFound(key_to_id(key))
    return vectors


async def _search(
    engine: VectorEngine, tenant_id: str, name: str, body: dict[str, Any], plan: Plan
) -> list[ScoredRecord]:
    using = body_models.agree_using(
        body_models.check_vector_name(body.get("using")), plan.using, "using"
    )
    spec = await engine.collection_spec(tenant_id, name)
    params = spec.vector(using)  # a vector the collection lacks: a 400 naming it
    spec.selected(body_models.with_vector_of(body.get("with_vector")))  # and there too
    keys = list(dict.fromkeys(plan.point_keys()))
    stored = await _stored_vectors(engine, tenant_id, name, keys, params.name)
    positive = [stored[e] if isinstance(e, str) else e for e in plan.positive]
    negative = [stored[e] if isinstance(e, str) else e for e in plan.negative]
    if plan.strategy != "average_vector":
        for example in positive + negative:
            check_query(example, params)  # the size of the vector used, finite, not zero
        query = body_models.search_query(body, positive[0], params.name)
        return await by_strategy(
            engine, tenant_id, name, _without(query, keys), plan.strategy, positive, negative,
            params.distance,
        )  # fmt: skip
    vector = positive[0] if len(positive) == 1 and not negative else None
    if vector is None:
        _same_size(positive + negative)
        vector = recommendation(positive, negative)
    query = _without(body_models.search_query(body, vector, params.name), keys)
    if plan.mmr is None:
        return await engine.search(tenant_id, name, query)
    return await _mmr(engine, tenant_id, name, query, plan.mmr, params.distance)


def _without(query: SearchQuery, keys: list[str]) -> SearchQuery:
    """``query`` leaving out the example points (they are not their own results)."""
    if not keys:
        return query
    excluded = HasId(frozenset(keys))
    kept = Filter(must=(query.filter,) if query.filter else (), must_not=(excluded,))
    return dataclasses.replace(query, filter=kept)


def _same_size(vectors: list[Any]) -> None:
    if len({len(vector) for vector in vectors}) > 1:
        raise BadRequest("wrong vector dimension: the examples differ in size")


async def _mmr(
    engine: VectorEngine,
    tenant_id: str,
    name: str,
    query: SearchQuery,
    mmr: Mmr,
    distance: Distance,
) -> list[ScoredRecord]:
    """The ``candidates`` nearest points (from the index, as a plain search), re-ranked by
    maximal marginal relevance with the distance of the vector searched."""
    need = query.offset + query.limit
    candidates = max(mmr.candidates or query.limit, need)
    searched_vector = (query.using,)
    wide = dataclasses.replace(query, limit=candidates, offset=0, with_vector=searched_vector)
    found = await engine.search(tenant_id, name, wide)
    if not found:
        return []
    sign = -1.0 if distance == "Euclid" else 1.0  # Euclid scores are distances
    relevance = np.asarray([sign * point.score for point in found], np.float32)
    vectors = np.asarray(
        [
            point.vector.get(query.using) if isinstance(point.vector, dict) else point.vector
            for point in found
        ],
        np.float32,
    )
    order = mmr_order(relevance, vectors, distance=distance, diversity=mmr.diversity, count=need)[
        query.offset :
    ]
    vectors_of = await as_asked(engine, tenant_id, name, [found[i].key for i, _ in order], query)
    return [
        ScoredRecord(found[i].key, score, found[i].payload, vectors_of.get(found[i].key))
        for i, score in order
    ]


async def _answer(
    request: Request, principal: Principal, name: str, parsed: Parsed, kind: str
) -> list[dict[str, Any]]:
    body, plan = parsed
    engine = engine_of(request)
    if plan is None:  # no query: the first points in id order, like Qdrant
        page = await engine.scroll(
            principal.tenant_id,
            name,
            filter=body_models.filter_of(body),
            offset_key=None,
            limit=body_models.limit_of(body),
            with_payload=body_models.payload_selector(body.get("with_payload"), default=False),
            with_vector=body_models.with_vector_of(body.get("with_vector")),
        )
        return [{**record_json(p), "version": 0, "score": 0.0} for p in page.points]
    found = await _search(engine, principal.tenant_id, name, body, plan)
    searched(request, principal, name, kind, len(found))
    return scored_json(found)


async def _one(
    request: Request, name: str, parse: Callable[[Any, str], Parsed], kind: str
) -> tuple[list[dict[str, Any]], float]:
    started = time.perf_counter()
    principal = await authorize(request, "points.search", collection=name)
    parsed = parse(await read_body(request), "")
    return await _answer(request, principal, name, parsed, kind), started


async def _many(
    request: Request, name: str, parse: Callable[[Any, str], Parsed], kind: str
) -> tuple[list[list[dict[str, Any]]], float]:
    started = time.perf_counter()
    principal = await authorize(request, "points.search", collection=name)
    batch = _batch(await read_body(request), parse)
    return [await _answer(request, principal, name, parsed, kind) for parsed in batch], started


MAX_GROUP_SIZE = 100


def _group_ids(payload: dict[str, Any] | None, key: Any) -> list[str | int]:
    ids: list[str | int] = []
    for value in extract(payload or {}, key):
        groupable = isinstance(value, str) or (
            isinstance(value, int) and not isinstance(value, bool)
        )
        if groupable and value not in ids:
            ids.append(value)
    return ids


async def _groups(
    request: Request, principal: Principal, name: str, body: dict[str, Any], plan: Plan
) -> list[dict[str, Any]]:
    """Nearest points grouped by a payload key's values (strings or integers): the best
    ``limit`` groups by their best hit, each with up to ``group_size`` hits. Candidates
    are searched in widening rounds until the groups are full or the points run out."""
    group_by = body.get("group_by")
    if not isinstance(group_by, str):
        raise BadRequest("group_by must be a payload key")
    key = parse_key(group_by)
    size = body_models.int_field(body, "group_size", 3, 1, MAX_GROUP_SIZE)
    wanted = body_models.limit_of(body)
    selector = body_models.payload_selector(body.get("with_payload"), default=False)
    engine = engine_of(request)
    candidates = wanted * size
    while True:
        limit = min(candidates, body_models.MAX_LIMIT)
        sub = {**body, "limit": limit, "with_payload": True}
        for field in ("group_by", "group_size"):
            sub.pop(field, None)
        found = await _search(engine, principal.tenant_id, name, sub, plan)
        groups: dict[str | int, list[ScoredRecord]] = {}
        for point in found:
            for group in _group_ids(point.payload, key):
                hits = groups.setdefault(group, [])
                if len(hits) < size:
                    hits.append(point)
        best = list(groups.items())[:wanted]
        full = len(best) == wanted and all(len(hits) == size for _, hits in best)
        if full or len(found) < limit or limit == body_models.MAX_LIMIT:
            break
        candidates *= 4
    searched(request, principal, name, "query", len(found))
    return [
        {
            "id": group,
            "hits": scored_json(
                [p._replace(payload=select_payload(p.payload, selector)) for p in hits]
            ),
        }
        for group, hits in best
    ]


@table.route("POST", "/collections/{name}/points/query/groups", "Universal query, grouped")
async def query_points_groups(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.search", collection=name)
    body = await read_body(request)
    fields.only(body, fields.QUERY_GROUPS)
    plan = query_plan(body.get("query"))
    if plan is None:
        raise BadRequest("query_points_groups needs a query")
    return ok({"groups": await _groups(request, principal, name, body, plan)}, started)


@table.route("POST", "/collections/{name}/points/search/groups", "Search, grouped")
async def search_groups(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "points.search", collection=name)
    body = await read_body(request)
    fields.only(body, fields.SEARCH_GROUPS)
    if "vector" not in body:
        raise BadRequest("search needs a vector")
    plan = vector_plan(body["vector"], "vector")
    return ok({"groups": await _groups(request, principal, name, body, plan)}, started)


@table.route(
    "POST", "/collections/{name}/points/query", "Universal query: vector, id, recommend, MMR"
)
async def query_points(request: Request, name: str) -> Response:
    points, started = await _one(request, name, _parse_query, "query")
    return ok({"points": points}, started)


@table.route("POST", "/collections/{name}/points/query/batch", "Several universal queries")
async def query_batch_points(request: Request, name: str) -> Response:
    answers, started = await _many(request, name, _parse_query, "query")
    return ok([{"points": points} for points in answers], started)


@table.route("POST", "/collections/{name}/points/search/batch", "Several searches")
async def search_batch(request: Request, name: str) -> Response:
    answers, started = await _many(request, name, _parse_search, "search")
    return ok(answers, started)


@table.route(
    "POST", "/collections/{name}/points/recommend", "Recommend by positive/negative examples"
)
async def recommend(request: Request, name: str) -> Response:
    points, started = await _one(request, name, _parse_recommend, "recommend")
    return ok(points, started)


@table.route("POST", "/collections/{name}/points/recommend/batch", "Several recommendations")
async def recommend_batch(request: Request, name: str) -> Response:
    answers, started = await _many(request, name, _parse_recommend, "recommend")
    return ok(answers, started)
