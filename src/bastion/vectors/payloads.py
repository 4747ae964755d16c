"""Qdrant's payload operations as one pure function of the old payload.

``set_payload`` merges keys into the payload (at a nested object ``key`` if given),
``overwrite_payload`` replaces it, ``delete_payload`` removes keys (dotted paths reach
into nested objects), ``clear_payload`` empties it. Both engines compute the new payload
with ``PayloadChange.apply`` inside the write transaction that stores it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from bastion.vectors.errors import BadRequest, PayloadTooLarge

Operation = Literal["set", "overwrite", "delete", "clear"]
_MAX_KEYS = 1024

# -- payload limits (issue 11, items 15 and 16) -------------------------------------------
# A payload is returned by every read path inside a response envelope (scroll, retrieve,
# search, query: up to 4 levels above it; export's NDJSON lines), and orjson, which writes
# every response, refuses JSON nested more than 254 levels. A payload nested 252 to 254
# levels used to be accepted and then made every read that returned it answer 500, for
# every caller, until the point was deleted; one nested 255 or more broke the size check
# itself. So a payload is refused at write time unless every reader can return it: at
# most ``MAX_PAYLOAD_DEPTH`` levels of objects and arrays (the payload object is level
# 1), measured by a loop (no recursion: no input can exhaust Python's stack), and at
# most ``settings.max_payload_bytes`` bytes as compact JSON (413).
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


@dataclass(frozen=True)
class PayloadChange:
    operation: Operation
    payload: dict[str, Any] = field(default_factory=dict)  # set / overwrite
    path: tuple[str, ...] = ()  # set: the nested object the keys go into
    keys: tuple[tuple[str, ...], ...] = ()  # delete: the paths removed
    max_bytes: int = 65_536  # a payload may not grow past this (``max_payload_bytes``)

    def apply(self, old: dict[str, Any] | None) -> dict[str, Any]:
        new = self._applied(old or {})
        if self.operation == "set" and len(orjson.dumps(new)) > self.max_bytes:
            raise PayloadTooLarge(f"the payload would be larger than {self.max_bytes} bytes")
        if self.operation == "set" and depth_exceeds(new, MAX_PAYLOAD_DEPTH):
            # a payload set under a nested ``key`` sinks by that key's depth
            raise BadRequest(
                f"the payload would be nested more than {MAX_PAYLOAD_DEPTH} levels "
                "(objects and arrays)"
            )
        return new

    def _applied(self, old: dict[str, Any]) -> dict[str, Any]:
        if self.operation == "clear":
            return {}
        if self.operation == "overwrite":
            return dict(self.payload)
        new = copy.deepcopy(old)
        if self.operation == "delete":
            for path in self.keys:
                _delete(new, path)
            return new
        target = new
        for name in self.path:
            inner = target.get(name)
            if not isinstance(inner, dict):
                inner = target[name] = {}
            target = inner
        target.update(copy.deepcopy(self.payload))
        return new


def _delete(payload: dict[str, Any], path: tuple[str, ...]) -> None:
    target: Any = payload
    for name in path[:-1]:
        target = target.get(name) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target.pop(path[-1], None)


def _path(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, str) or not raw or len(raw) > 512:
        raise BadRequest(f"{where} must be a non-empty payload key")
    parts = tuple(raw.split("."))
    if any(not part or "[" in part or "]" in part for part in parts):
        raise BadRequest(f"{where}: only object keys (a.b.c) are supported, not arrays: {raw!r}")
    return parts


def payload_change(operation: Operation, body: dict[str, Any], max_bytes: int) -> PayloadChange:
    """The change a request body asks for (``payload``, ``key``, ``keys``), validated."""
    if operation in ("set", "overwrite"):
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise BadRequest("payload must be an object")
        if len(orjson.dumps(payload)) > max_bytes:
            raise PayloadTooLarge(f"payload is larger than {max_bytes} bytes")
        path: tuple[str, ...] = ()
        if operation == "set" and body.get("key") is not None:
            path = _path(body["key"], "key")
        return PayloadChange(operation, payload=payload, path=path, max_bytes=max_bytes)
    if operation == "delete":
        raw = body.get("keys")
        if not isinstance(raw, list) or not raw or len(raw) > _MAX_KEYS:
            raise BadRequest(f"keys must be a list of 1 to {_MAX_KEYS} payload keys")
        keys = tuple(_path(key, f"keys[{i}]") for i, key in enumerate(raw))
        return PayloadChange(operation, keys=keys, max_bytes=max_bytes)
    return PayloadChange(operation, max_bytes=max_bytes)
