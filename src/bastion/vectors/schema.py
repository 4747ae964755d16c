"""The engine's tables; defined with every other table in ``bastion.storage`` (which owns
the schema and its migrations) and named here for the engine's modules."""

from bastion.storage.vector_schema import (
    collection_aliases,
    collections,
    payload_indexes,
    point_tombstones,
    points,
)

__all__ = ["collection_aliases", "collections", "payload_indexes", "point_tombstones", "points"]
