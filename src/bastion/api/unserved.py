"""Qdrant routes Bastion does not serve: a clear answer in Qdrant's envelope naming the
feature (501), and, for a path that is no route at all, a 404 naming the path, never a
bare "Not Found". A client (or its user) learns at once that the call is not there,
instead of guessing from a 404 whether the collection or the route is missing.

The table is data: (method or ``*``, path shape with ``{}`` for any one segment, the
feature it is). A route Bastion serves is matched before this table is asked.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# Top-level Qdrant paths outside /collections (all unserved): answered here too.
ELSEWHERE = ("/aliases", "/cluster", "/snapshots", "/telemetry", "/locks", "/issues")

# Qdrant's snapshots (create, list, download, recover) are archives of its own segment
# files; Bastion backs a collection up as NDJSON instead (docs/backup.md).
_SNAPSHOTS = (
    "snapshots (Bastion backs collections up as NDJSON instead: "
    "GET /collections/{name}/backup and POST /collections/{name}/restore, "
    "or `bastion backup` and `bastion restore`; docs/backup.md)"
)

UNSERVED: Sequence[tuple[str, str, str]] = (
    ("*", "/collections/{}/snapshots", _SNAPSHOTS),
    ("*", "/collections/{}/snapshots/{}", _SNAPSHOTS),
    ("*", "/collections/{}/snapshots/{}/{}", _SNAPSHOTS),
    ("*", "/snapshots", f"full-storage {_SNAPSHOTS}"),
    ("*", "/snapshots/{}", f"full-storage {_SNAPSHOTS}"),
    ("*", "/collections/{}/cluster", "cluster and shard management"),
    ("*", "/collections/{}/shards", "cluster and shard management (custom sharding)"),
    ("*", "/collections/{}/shards/{}", "cluster and shard management (custom sharding)"),
    ("*", "/collections/{}/shards/{}/{}", "cluster and shard management (custom sharding)"),
    ("*", "/cluster", "cluster and shard management"),
    ("*", "/cluster/{}", "cluster and shard management"),
    ("*", "/cluster/{}/{}", "cluster and shard management"),
    ("*", "/cluster/{}/{}/{}", "cluster and shard management"),
    ("*", "/collections/{}/points/batch", "batch_update_points"),
    ("GET", "/collections/{}/points/{}", "GET of one point (use POST /collections/{name}/points)"),
    ("*", "/collections/{}/points/recommend/groups", "recommend_groups"),
    ("*", "/collections/{}/points/discover", "discovery search"),
    ("*", "/collections/{}/points/discover/batch", "discovery search"),
    ("*", "/collections/{}/points/search/matrix/pairs", "search_matrix_pairs"),
    ("*", "/collections/{}/points/search/matrix/offsets", "search_matrix_offsets"),
    ("*", "/collections/{}/facet", "facet counts"),
    ("*", "/telemetry", "telemetry (Bastion serves /metrics)"),
    ("*", "/locks", "storage locks"),
    ("*", "/issues", "issues reporting"),
)


def feature_of(method: str, path: str, *, named_method: bool = False) -> str | None:
    """The unserved Qdrant feature ``method path`` asks for, if it is one (``named_method``:
    only the entries for one method, asked before the router, which would answer a
    served path with another method 405)."""
    parts = path.rstrip("/").split("/")
    for wanted, shape, feature in UNSERVED:
        if wanted not in ("*", method) or (named_method and wanted == "*"):
            continue
        pattern = shape.split("/")
        if len(pattern) == len(parts) and all(
            (p == "{}" and bool(part)) or p == part for p, part in zip(pattern, parts, strict=True)
        ):
            return feature
    return None


def _answer(status: int, error: str) -> Response:
    body = {"status": {"error": error}, "time": 0.0}
    return Response(
        orjson.dumps(body),
        status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def not_implemented(method: str, path: str, feature: str) -> Response:
    return _answer(501, f"Not implemented: {feature} is not supported by Bastion ({method} {path})")


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The data plane router's default: no route has this path (any method)."""
    method, path = scope["method"], scope["path"]
    feature = feature_of(method, path)
    if feature is not None:
        response = not_implemented(method, path, feature)
    else:
        response = _answer(
            404,
            f"Not found: {method} {path} is no route of Bastion's data plane "
            "(a subset of Qdrant's REST API: docs/vectors.md)",
        )
    await response(scope, receive, send)
