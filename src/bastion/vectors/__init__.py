"""Vector engines (embedded: SQLite + in-memory ANN), Qdrant filters and point ids."""

from bastion.vectors.embedded import EmbeddedEngine
from bastion.vectors.engine import (
    DISTANCES,
    CollectionInfo,
    CollectionSpec,
    Distance,
    HnswParams,
    PayloadSelector,
    PointRecord,
    PointWrite,
    ScoredRecord,
    ScrollPage,
    SearchQuery,
    VectorEngine,
)
from bastion.vectors.errors import BadRequest, CollectionExists, CollectionNotFound
from bastion.vectors.filters import Filter, parse_filter
from bastion.vectors.ids import key_to_id, parse_point_id

__all__ = [
    "DISTANCES",
    "BadRequest",
    "CollectionExists",
    "CollectionInfo",
    "CollectionNotFound",
    "CollectionSpec",
    "Distance",
    "EmbeddedEngine",
    "Filter",
    "HnswParams",
    "PayloadSelector",
    "PointRecord",
    "PointWrite",
    "ScoredRecord",
    "ScrollPage",
    "SearchQuery",
    "VectorEngine",
    "key_to_id",
    "parse_filter",
    "parse_point_id",
]
