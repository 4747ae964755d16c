"""The data plane in the OpenAPI document: Qdrant's request bodies and answers.

The data-plane routes are plain Starlette routes (``api.routing``), parsed by hand on the
hot path (``vectors.models``), so FastAPI cannot describe them. This module does, as JSON
Schema that follows Qdrant's REST API (the subset Bastion serves, API.md "Data plane"):
every answer is the envelope ``{"result", "status": "ok", "time"}``, every error
``{"status": {"error"}, "time"}`` (``api.problems.render``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.errors import BastionError, Conflict, NotFound


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_NULLABLE_OBJECT: dict[str, Any] = {"anyOf": [{"type": "object"}, {"type": "null"}]}
_SELECTOR: dict[str, Any] = {
    "description": "true/false, a list of payload keys, or {include|exclude: [keys]}.",
    "anyOf": [
        {"type": "boolean"},
        {"type": "array", "items": {"type": "string"}},
        {
            "type": "object",
            "properties": {
                "include": {"type": "array", "items": {"type": "string"}},
                "exclude": {"type": "array", "items": {"type": "string"}},
            },
        },
    ],
}
_WITH_VECTOR: dict[str, Any] = {
    "anyOf": [{"type": "boolean"}, {"type": "array", "items": {"type": "string"}}]
}
_VECTOR: dict[str, Any] = {"type": "array", "items": {"type": "number"}, "minItems": 1}
_NAMED_VECTORS: dict[str, Any] = {
    "type": "object",
    "description": "Named vectors: {name: vector}; a point may lack some of them.",
    "additionalProperties": _VECTOR,
}
_POINT_VECTOR: dict[str, Any] = {"anyOf": [_VECTOR, _NAMED_VECTORS]}
_NAMED_VECTOR: dict[str, Any] = {
    "type": "object",
    "description": "One vector of a named-vector collection: {name, vector}.",
    "required": ["name", "vector"],
    "properties": {"name": {"type": "string"}, "vector": _VECTOR},
}
_USING: dict[str, Any] = {
    "type": "string",
    "description": 'The named vector to search ("" or absent: the unnamed one).',
}
_VECTOR_OUT: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": {"type": "number"}},
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}},
        {"type": "null"},
    ]
}
_VECTOR_PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["size", "distance"],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": 65_536},
        "distance": {"type": "string", "enum": ["Cosine", "Dot", "Euclid"]},
        "hnsw_config": {"type": "object"},
    },
}
_LIMIT: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 10_000}


def _batch_of(request: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["searches"],
        "properties": {
            "searches": {"type": "array", "items": _ref(request), "minItems": 1, "maxItems": 100}
        },
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "QdrantError": {
        "type": "object",
        "description": "Qdrant's error envelope.",
        "required": ["status", "time"],
        "properties": {
            "status": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "time": {"type": "number"},
        },
    },
    "ExtendedPointId": {
        "description": "An unsigned integer or a UUID string.",
        "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "format": "uuid"}],
    },
    "Filter": {
        "type": "object",
        "description": "Qdrant filter: must / should / must_not lists of conditions "
        "(match, range, values_count, is_empty, is_null, has_id, nested filters).",
        "properties": {
            "must": {"type": "array", "items": _ref("Condition")},
            "should": {"type": "array", "items": _ref("Condition")},
            "must_not": {"type": "array", "items": _ref("Condition")},
            "min_should": {
                "type": "object",
                "properties": {
                    "conditions": {"type": "array", "items": _ref("Condition")},
                    "min_count": {"type": "integer", "minimum": 0},
                },
            },
        },
        "additionalProperties": False,
    },
    "Condition": {
        "description": "A field condition ({key, match|range|values_count}), "
        "{is_empty: {key}}, {is_null: {key}}, {has_id: [ids]} or a nested filter.",
        "type": "object",
    },
    "CreateCollection": {
        "type": "object",
        "required": ["vectors"],
        "properties": {
            "vectors": {
                "description": "One unnamed vector {size, distance}, or named vectors "
                "{name: {size, distance, hnsw_config}} (at most 16).",
                "anyOf": [
                    _VECTOR_PARAMS,
                    {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 16,
                        "additionalProperties": _VECTOR_PARAMS,
                    },
                ],
            },
            "hnsw_config": {"type": "object"},
        },
    },
    "PointStruct": {
        "type": "object",
        "required": ["id", "vector"],
        "properties": {
            "id": _ref("ExtendedPointId"),
            "vector": _POINT_VECTOR,
            "payload": _NULLABLE_OBJECT,
        },
    },
    "PointsUpsert": {
        "description": "{points: [...]} or {batch: {ids, vectors, payloads}}.",
        "anyOf": [
            {
                "type": "object",
                "required": ["points"],
                "properties": {
                    "points": {"type": "array", "items": _ref("PointStruct"), "minItems": 1}
                },
            },
            {
                "type": "object",
                "required": ["batch"],
                "properties": {
                    "batch": {
                        "type": "object",
                        "required": ["ids", "vectors"],
                        "properties": {
                            "ids": {"type": "array", "items": _ref("ExtendedPointId")},
                            "vectors": {
                                "description": "A vector per id, or {name: [vector per id]}.",
                                "anyOf": [
                                    {"type": "array", "items": _VECTOR},
                                    {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "array",
                                            "items": _VECTOR,
                                        },
                                    },
                                ],
                            },
                            "payloads": {"type": "array", "items": _NULLABLE_OBJECT},
                        },
                    }
                },
            },
        ],
    },
    "UpdateVectors": {
        "type": "object",
        "required": ["points"],
        "properties": {
            "points": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["id", "vector"],
                    "properties": {"id": _ref("ExtendedPointId"), "vector": _POINT_VECTOR},
                },
            },
            "update_filter": _ref("Filter"),
        },
    },
    "DeleteVectors": {
        "type": "object",
        "required": ["vector"],
        "description": "The named vectors to delete, of the points (ids) or a filter's.",
        "properties": {
            "vector": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "points": {"type": "array", "items": _ref("ExtendedPointId")},
            "filter": _ref("Filter"),
        },
    },
    "PointsSelector": {
        "description": "{points: [ids]} or {filter}.",
        "type": "object",
        "properties": {
            "points": {"type": "array", "items": _ref("ExtendedPointId")},
            "filter": _ref("Filter"),
        },
    },
    "RetrieveRequest": {
        "type": "object",
        "required": ["ids"],
        "properties": {
            "ids": {"type": "array", "items": _ref("ExtendedPointId")},
            "with_payload": _SELECTOR,
            "with_vector": _WITH_VECTOR,
        },
    },
    "ScrollRequest": {
        "type": "object",
        "properties": {
            "filter": _ref("Filter"),
            "offset": _ref("ExtendedPointId"),
            "limit": _LIMIT,
            "with_payload": _SELECTOR,
            "with_vector": _WITH_VECTOR,
        },
    },
    "CountRequest": {
        "type": "object",
        "properties": {"filter": _ref("Filter"), "exact": {"type": "boolean"}},
    },
    "SearchRequest": {
        "type": "object",
        "required": ["vector"],
        "properties": {
            "vector": {"anyOf": [_VECTOR, _NAMED_VECTOR]},
            "filter": _ref("Filter"),
            "limit": _LIMIT,
            "offset": {"type": "integer", "minimum": 0, "maximum": 100_000},
            "with_payload": _SELECTOR,
            "with_vector": _WITH_VECTOR,
            "score_threshold": {"type": "number"},
            "params": {"type": "object"},
        },
    },
    "QueryRequest": {
        "type": "object",
        "properties": {
            "query": {
                "description": "A vector or {nearest: vector}; without it, the first points.",
                "anyOf": [
                    _VECTOR,
                    {"type": "object", "required": ["nearest"], "properties": {"nearest": _VECTOR}},
                ],
            },
            "using": _USING,
            "filter": _ref("Filter"),
            "limit": _LIMIT,
            "offset": {"type": "integer", "minimum": 0, "maximum": 100_000},
            "with_payload": _SELECTOR,
            "with_vector": _WITH_VECTOR,
            "score_threshold": {"type": "number"},
            "params": {"type": "object"},
        },
    },
    "UpdateCollection": {
        "type": "object",
        "description": "hnsw_config.full_scan_threshold applies; the rest is a 400.",
        "properties": {"hnsw_config": {"type": "object"}, "vectors": {"type": "object"}},
    },
    "SetPayload": {
        "type": "object",
        "required": ["payload"],
        "properties": {
            "payload": {"type": "object"},
            "points": {"type": "array", "items": _ref("ExtendedPointId")},
            "filter": _ref("Filter"),
            "key": {"type": "string"},
        },
    },
    "DeletePayload": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "points": {"type": "array", "items": _ref("ExtendedPointId")},
            "filter": _ref("Filter"),
        },
    },
    "RecommendRequest": {
        "type": "object",
        "required": ["positive"],
        "properties": {
            "positive": {"type": "array", "items": {"anyOf": [_ref("ExtendedPointId"), _VECTOR]}},
            "negative": {"type": "array", "items": {"anyOf": [_ref("ExtendedPointId"), _VECTOR]}},
            "strategy": {
                "type": "string",
                "enum": ["average_vector", "best_score", "sum_scores"],
            },
            "using": _USING,
            "filter": _ref("Filter"),
            "limit": _LIMIT,
            "with_payload": _SELECTOR,
            "with_vector": _WITH_VECTOR,
        },
    },
    "SearchRequestBatch": _batch_of("SearchRequest"),
    "QueryRequestBatch": _batch_of("QueryRequest"),
    "RecommendRequestBatch": _batch_of("RecommendRequest"),
    "QueryGroupsRequest": {
        "type": "object",
        "required": ["query", "group_by"],
        "properties": {
            "query": _VECTOR,
            "using": _USING,
            "group_by": {"type": "string"},
            "group_size": {"type": "integer", "minimum": 1, "maximum": 100},
            "limit": _LIMIT,
            "filter": _ref("Filter"),
            "with_payload": _SELECTOR,
        },
    },
    "SearchGroupsRequest": {
        "type": "object",
        "required": ["vector", "group_by"],
        "properties": {
            "vector": {"anyOf": [_VECTOR, _NAMED_VECTOR]},
            "group_by": {"type": "string"},
            "group_size": {"type": "integer", "minimum": 1, "maximum": 100},
            "limit": _LIMIT,
            "filter": _ref("Filter"),
            "with_payload": _SELECTOR,
        },
    },
    "ChangeAliases": {
        "type": "object",
        "required": ["actions"],
        "description": "create_alias {collection_name, alias_name}, delete_alias "
        "{alias_name}, rename_alias {old_alias_name, new_alias_name}; all or none.",
        "properties": {"actions": {"type": "array", "items": {"type": "object"}, "minItems": 1}},
    },
    "CreatePayloadIndex": {
        "type": "object",
        "required": ["field_name", "field_schema"],
        "properties": {
            "field_name": {"type": "string", "minLength": 1},
            "field_schema": {
                "anyOf": [
                    {
                        "type": "string",
                        "enum": ["keyword", "integer", "float", "bool", "uuid", "text", "datetime"],
                    },
                    {"type": "object", "required": ["type"], "properties": {"type": {}}},
                ]
            },
        },
    },
    "Record": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": _ref("ExtendedPointId"),
            "payload": _NULLABLE_OBJECT,
            "vector": _VECTOR_OUT,
            "order_value": {"type": "number", "description": "scroll with order_by"},
        },
    },
    "ScoredPoint": {
        "type": "object",
        "required": ["id", "score"],
        "properties": {
            "id": _ref("ExtendedPointId"),
            "version": {"type": "integer"},
            "score": {"type": "number"},
            "payload": _NULLABLE_OBJECT,
            "vector": _VECTOR_OUT,
        },
    },
    "UpdateResult": {
        "type": "object",
        "required": ["operation_id", "status"],
        "properties": {
            "operation_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["acknowledged", "completed"]},
        },
    },
    "CollectionInfo": {
        "type": "object",
        "required": ["status", "points_count", "config"],
        "properties": {
            "status": {"type": "string"},
            "optimizer_status": {"type": "string"},
            "indexed_vectors_count": {"type": "integer"},
            "points_count": {"type": "integer"},
            "segments_count": {"type": "integer"},
            "config": {"type": "object"},
            "payload_schema": {"type": "object"},
            "created_at": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    },
}


def envelope(result: dict[str, Any]) -> dict[str, Any]:
    """Qdrant's success envelope around ``result``."""
    return {
        "type": "object",
        "required": ["result", "status", "time"],
        "properties": {
            "result": result,
            "status": {"type": "string", "enum": ["ok"]},
            "time": {"type": "number"},
        },
    }


NDJSON_BODY = "application/x-ndjson"  # ``Operation.body``: a file of JSON lines, not JSON


@dataclass(frozen=True)
class Operation:
    """What one data-plane route takes and answers, beyond what every route shares."""

    result: dict[str, Any] | None  # None: not JSON (the NDJSON export)
    body: str | None = None  # a component in SCHEMAS
    raises: tuple[type[BastionError], ...] = (NotFound,)


_POINTS = {"type": "array", "items": _ref("Record")}
_SCORED = {"type": "array", "items": _ref("ScoredPoint")}

_QUERY_RESULT = {"type": "object", "required": ["points"], "properties": {"points": _SCORED}}
_GROUPS = {
    "type": "object",
    "required": ["groups"],
    "properties": {
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "hits"],
                "properties": {
                    "id": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "hits": _SCORED,
                },
            },
        }
    },
}
_ALIASES = {
    "type": "object",
    "required": ["aliases"],
    "properties": {
        "aliases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["alias_name", "collection_name"],
                "properties": {
                    "alias_name": {"type": "string"},
                    "collection_name": {"type": "string"},
                },
            },
        }
    },
}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/collections"): Operation(
        {
            "type": "object",
            "required": ["collections"],
            "properties": {
                "collections": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}},
                    },
                }
            },
        },
        raises=(),
    ),
    ("GET", "/collections/{name}"): Operation(_ref("CollectionInfo")),
    ("GET", "/collections/{name}/exists"): Operation(
        {
            "type": "object",
            "required": ["exists"],
            "properties": {"exists": {"type": "boolean"}},
        },
        raises=(),
    ),
    ("PUT", "/collections/{name}"): Operation(
        {"type": "boolean"}, "CreateCollection", raises=(Conflict,)
    ),
    ("DELETE", "/collections/{name}"): Operation({"type": "boolean"}, raises=()),
    ("PUT", "/collections/{name}/index"): Operation(_ref("UpdateResult"), "CreatePayloadIndex"),
    ("DELETE", "/collections/{name}/index/{field_name}"): Operation(_ref("UpdateResult")),
    ("PUT", "/collections/{name}/points"): Operation(_ref("UpdateResult"), "PointsUpsert"),
    ("PUT", "/collections/{name}/points/vectors"): Operation(_ref("UpdateResult"), "UpdateVectors"),
    ("POST", "/collections/{name}/points/vectors/delete"): Operation(
        _ref("UpdateResult"), "DeleteVectors"
    ),
    ("POST", "/collections/{name}/points/delete"): Operation(
        _ref("UpdateResult"), "PointsSelector"
    ),
    ("POST", "/collections/{name}/points"): Operation(_POINTS, "RetrieveRequest"),
    ("POST", "/collections/{name}/points/scroll"): Operation(
        {
            "type": "object",
            "required": ["points", "next_page_offset"],
            "properties": {
                "points": _POINTS,
                "next_page_offset": {"anyOf": [_ref("ExtendedPointId"), {"type": "null"}]},
            },
        },
        "ScrollRequest",
    ),
    ("POST", "/collections/{name}/points/count"): Operation(
        {
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 0}},
        },
        "CountRequest",
    ),
    ("POST", "/collections/{name}/points/search"): Operation(_SCORED, "SearchRequest"),
    ("POST", "/collections/{name}/points/query"): Operation(_QUERY_RESULT, "QueryRequest"),
    ("POST", "/collections/{name}/export"): Operation(None),
    ("GET", "/collections/{name}/backup"): Operation(None),  # docs/backup.md
    ("POST", "/collections/{name}/restore"): Operation(
        {
            "type": "object",
            "required": ["collection", "source", "points", "payload_indexes", "aliases", "sha256"],
            "properties": {
                "collection": {"type": "string"},
                "source": {"type": "string"},
                "points": {"type": "integer", "minimum": 0},
                "payload_indexes": {"type": "object", "additionalProperties": {"type": "string"}},
                "aliases": {"type": "array", "items": {"type": "string"}},
                "sha256": {"type": "string"},
            },
        },
        NDJSON_BODY,
        raises=(Conflict,),
    ),
    ("PATCH", "/collections/{name}"): Operation({"type": "boolean"}, "UpdateCollection"),
    ("POST", "/collections/{name}/points/payload"): Operation(_ref("UpdateResult"), "SetPayload"),
    ("PUT", "/collections/{name}/points/payload"): Operation(_ref("UpdateResult"), "SetPayload"),
    ("POST", "/collections/{name}/points/payload/delete"): Operation(
        _ref("UpdateResult"), "DeletePayload"
    ),
    ("POST", "/collections/{name}/points/payload/clear"): Operation(
        _ref("UpdateResult"), "PointsSelector"
    ),
    ("POST", "/collections/{name}/points/query/batch"): Operation(
        {"type": "array", "items": _QUERY_RESULT}, "QueryRequestBatch"
    ),
    ("POST", "/collections/{name}/points/search/batch"): Operation(
        {"type": "array", "items": _SCORED}, "SearchRequestBatch"
    ),
    ("POST", "/collections/{name}/points/recommend"): Operation(_SCORED, "RecommendRequest"),
    ("POST", "/collections/{name}/points/recommend/batch"): Operation(
        {"type": "array", "items": _SCORED}, "RecommendRequestBatch"
    ),
    ("POST", "/collections/{name}/points/query/groups"): Operation(_GROUPS, "QueryGroupsRequest"),
    ("POST", "/collections/{name}/points/search/groups"): Operation(_GROUPS, "SearchGroupsRequest"),
    ("POST", "/collections/aliases"): Operation({"type": "boolean"}, "ChangeAliases"),
    ("GET", "/aliases"): Operation(_ALIASES, raises=()),
    ("GET", "/collections/{name}/aliases"): Operation(_ALIASES, raises=()),
}
