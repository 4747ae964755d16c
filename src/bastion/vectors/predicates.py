"""Compile a filter AST into a fast predicate over ``(point key, payload)``.

Semantics follow Qdrant: a key that reaches an array yields its elements; a condition
on several values matches when any value does; ``is_empty`` holds for a missing key,
``null`` or ``[]``; ``is_null`` only for an explicit ``null``; values are compared with
their JSON type (``true`` never equals ``1``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bastion.vectors.filters import (
    AllOf,
    Condition,
    Filter,
    HasId,
    IsEmpty,
    IsNull,
    Match,
    Nested,
    PathPart,
    Range,
)

Predicate = Callable[[str, Mapping[str, Any]], bool]
Values = Callable[[Mapping[str, Any]], list[Any]]


def extract(payload: Any, path: tuple[PathPart, ...]) -> list[Any]:
    """Every value a path reaches (arrays at the end are flattened one level)."""
    current: list[Any] = [payload]
    for part in path:
        found: list[Any] = []
        if part.index is None:
            for item in current:
                if isinstance(item, dict):
                    if part.name in item:
                        found.append(item[part.name])
                elif isinstance(item, list):  # ``a.b`` on an array of objects
                    found.extend(
                        el[part.name] for el in item if isinstance(el, dict) and part.name in el
                    )
        elif part.index is True:
            for item in current:
                if isinstance(item, list):
                    found.extend(item)
        else:
            for item in current:
                if isinstance(item, list) and part.index < len(item):
                    found.append(item[part.index])
        current = found
    values: list[Any] = []
    for item in current:
        if isinstance(item, list):
            values.extend(item)
        else:
            values.append(item)
    return values


def _values_of(path: tuple[PathPart, ...]) -> Values:
    if len(path) == 1 and path[0].index is None:
        name = path[0].name

        def single(payload: Mapping[str, Any]) -> list[Any]:
            value = payload.get(name)
            if value is None:
                return [] if name not in payload else [None]
            return value if isinstance(value, list) else [value]

        return single
    return lambda payload: extract(payload, path)


def typed(value: Any) -> tuple[str, Any] | None:
    """A hashable, JSON-type-aware form of a scalar (None for floats, objects, null)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, str):
        return ("s", value)
    return None


def compile_filter(node: Filter) -> Predicate:
    must = [compile_condition(c) for c in node.must]
    should = [compile_condition(c) for c in node.should]
    must_not = [compile_condition(c) for c in node.must_not]
    min_should = None
    if node.min_should is not None:
        min_should = ([compile_condition(c) for c in node.min_should[0]], node.min_should[1])

    def predicate(key: str, payload: Mapping[str, Any]) -> bool:
        for check in must:
            if not check(key, payload):
                return False
        for check in must_not:
            if check(key, payload):
                return False
        if should and not any(check(key, payload) for check in should):
            return False
        if min_should is not None:
            checks, needed = min_should
            hits = 0
            for check in checks:
                if check(key, payload):
                    hits += 1
                    if hits >= needed:
                        break
            if hits < needed:
                return False
        return True

    return predicate


def compile_condition(node: Condition) -> Predicate:
    if isinstance(node, Filter):
        return compile_filter(node)
    if isinstance(node, AllOf):
        parts = [compile_condition(c) for c in node.conditions]
        return lambda key, payload: all(part(key, payload) for part in parts)
    if isinstance(node, HasId):
        keys = node.keys
        return lambda key, _payload: key in keys
    if isinstance(node, Nested):
        inner = compile_filter(node.filter)
        values = _values_of(node.key)
        return lambda key, payload: any(
            isinstance(item, dict) and inner(key, item) for item in values(payload)
        )
    values = _values_of(node.key)
    if isinstance(node, IsEmpty):
        return lambda _key, payload: all(item is None for item in values(payload))
    if isinstance(node, IsNull):
        return lambda _key, payload: any(item is None for item in values(payload))
    if isinstance(node, Range):
        return _compile_range(node, values)
    return _compile_match(node, values)


def _compile_match(node: Match, values: Values) -> Predicate:
    if node.kind == "text":
        needle = str(node.values[0])
        return lambda _key, payload: any(
            isinstance(item, str) and needle in item for item in values(payload)
        )
    wanted = {typed(v) for v in node.values}
    if node.kind == "except":
        return lambda _key, payload: any(
            typed(item) not in wanted for item in values(payload) if item is not None
        )
    return lambda _key, payload: any(typed(item) in wanted for item in values(payload))


def _compile_range(node: Range, values: Values) -> Predicate:
    def within(number: float) -> bool:
        return not (
            (node.gt is not None and not number > node.gt)
            or (node.gte is not None and not number >= node.gte)
            or (node.lt is not None and not number < node.lt)
            or (node.lte is not None and not number <= node.lte)
        )

    if node.count:
        return lambda _key, payload: within(sum(1 for item in values(payload) if item is not None))
    return lambda _key, payload: any(
        within(item)
        for item in values(payload)
        if isinstance(item, int | float) and not isinstance(item, bool)
    )


def required_keys(node: Filter) -> frozenset[str] | None:
    """Point keys a match must be among (top-level ``must`` ``has_id``), or None."""
    allowed: frozenset[str] | None = None
    for condition in node.must:
        if isinstance(condition, HasId):
            allowed = condition.keys if allowed is None else allowed & condition.keys
    return allowed


def indexable_matches(node: Filter) -> list[Match]:
    """Top-level ``must`` matches (value/any) on a plain key: candidates for a payload index."""
    return [
        condition
        for condition in node.must
        if isinstance(condition, Match)
        and condition.kind in ("value", "any")
        and len(condition.key) == 1
        and condition.key[0].index is None
    ]
