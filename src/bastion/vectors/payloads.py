"""Limits on a point's payload, checked at write time (issue 11, items 15 and 16).

A payload is stored as written and returned by every read path inside a response
envelope: scroll ``{"result": {"points": [{"payload": …}]}}``, query, search, retrieve,
and the export's NDJSON lines. orjson, which writes every response, refuses to encode
JSON nested more than 254 levels; a payload nested 252 to 254 levels used to be accepted
and then made every read that returned it answer 500, for every caller, until the point
was deleted; one nested 255 levels or more broke the size check itself (a 500 on upsert).

So a payload is refused at write time (``400``) unless every reader can return it:

- at most ``MAX_PAYLOAD_DEPTH`` levels of objects and arrays (the payload object is
  level 1), far inside what the deepest envelope leaves (254 - 4);
- at most ``settings.max_payload_bytes`` bytes as compact JSON (``413``).

The depth is measured by a loop over the containers (no recursion, so no input can
exhaust Python's stack), before the payload is encoded to measure its size.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.vectors.errors import BadRequest, PayloadTooLarge

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
