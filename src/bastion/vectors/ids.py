"""Point ids as Qdrant has them: unsigned 64-bit integers or UUIDs.

Stored as a *key*: text whose byte order is Qdrant's scroll order (every integer,
ascending, before every UUID). Integers become 20 zero-padded digits; UUIDs become
``u`` + the canonical hyphenated lower-case form.
"""

from __future__ import annotations

import uuid
from typing import Any

from bastion.vectors.errors import BadRequest

PointId = int | str  # what clients send and receive (int, or canonical UUID text)

MAX_INT_ID = 2**64 - 1
_INT_WIDTH = 20


def parse_point_id(value: Any) -> str:
    """Validate a client-supplied id and return its storage key (raises BadRequest)."""
    if isinstance(value, bool):  # bool is an int subclass in Python; Qdrant refuses it
        raise BadRequest("point id must be an unsigned integer or a UUID string, not a boolean")
    if isinstance(value, int):
        if value < 0 or value > MAX_INT_ID:
            raise BadRequest("point id must be an unsigned 64-bit integer or a UUID string")
        return f"{value:0{_INT_WIDTH}d}"
    if isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            raise BadRequest(
                "point id must be an unsigned integer or a UUID string; unable to parse UUID"
            ) from None
        return "u" + str(parsed)
    raise BadRequest("point id must be an unsigned integer or a UUID string")


def key_to_id(key: str) -> PointId:
    """The client-facing form of a storage key."""
    if key[0] == "u":  # keys are never empty
        return key[1:]
    return int(key)


def parse_point_ids(values: Any, *, field: str = "points") -> list[str]:
    """A list of ids → keys, refusing a non-list."""
    if not isinstance(values, list):
        raise BadRequest(f"{field} must be a list of point ids")
    return [parse_point_id(value) for value in values]
