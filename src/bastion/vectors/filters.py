"""Qdrant payload filters: parse JSON into a validated AST, then compile it to a predicate.

Supported (as Qdrant): ``must`` / ``should`` / ``must_not`` / ``min_should``, nested filters,
``match`` (``value``, ``any``, ``except``, ``text``), ``range`` (gt/gte/lt/lte),
``values_count``, ``is_empty``, ``is_null``, ``has_id``, ``nested``; keys ``a.b``, ``a[].b``,
``a[0].b``. A key that reaches an array matches when any element does. Anything else
(unknown operator, wrong type) raises ``BadRequest`` naming what is wrong.

A filter has a total budget besides its depth (``MAX_DEPTH``) and the length of each list
(issue 11, item 5): at most ``MAX_FILTER_CONDITIONS`` conditions in all (a nested filter
counts as one more) and ``MAX_FILTER_VALUES`` values in all its ``match any / except``
and ``has_id`` lists. Parsing stops at the first condition over it, so a 14.5 MB filter
is refused after a few thousand conditions, not evaluated against every point. The
parsed ``Filter`` carries its ``weight`` (conditions + values), by which the engine
decides whether evaluating it may run on the event loop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bastion.text import why_unsafe
from bastion.vectors.errors import BadRequest
from bastion.vectors.ids import parse_point_id

Scalar = str | int | bool
Predicate = Callable[[str, Mapping[str, Any]], bool]  # (point key, payload) -> match
_MISSING: Any = object()
MAX_DEPTH = 16
MAX_LIST_CONDITIONS = 1024  # in one must / should / must_not list
MAX_FILTER_CONDITIONS = 4096  # in the whole filter
MAX_FILTER_VALUES = 10_000  # in all its match any / except and has_id lists


@dataclass(frozen=True)
class PathPart:
    name: str
    index: int | bool | None  # None: plain; True: ``[]`` (every element); int: ``[n]``


@dataclass(frozen=True)
class Match:
    key: tuple[PathPart, ...]
    kind: str  # value | any | except | text
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    key: tuple[PathPart, ...]
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    count: bool = False  # values_count: compare the number of values


@dataclass(frozen=True)
class IsEmpty:
    key: tuple[PathPart, ...]


@dataclass(frozen=True)
class IsNull:
    key: tuple[PathPart, ...]


@dataclass(frozen=True)
class HasId:
    keys: frozenset[str]


@dataclass(frozen=True)
class Nested:
    key: tuple[PathPart, ...]
    filter: Filter


@dataclass(frozen=True)
class AllOf:
    """Several checks of one FieldCondition (e.g. ``match`` and ``range``): all must hold."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Filter:
    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()
    min_should: tuple[tuple[Condition, ...], int] | None = None
    # Conditions + list values of the whole filter (set on the outermost one by
    # ``parse_filter``): what evaluating it against one point may cost.
    weight: int = field(default=1, compare=False)


class _Budget:
    """What is left of a filter's total budget while it is parsed."""

    __slots__ = ("conditions", "values")

    def __init__(self) -> None:
        self.conditions = 0
        self.values = 0

    def condition(self) -> None:
        self.conditions += 1
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise BadRequest(
                f"filter is too complex: more than {MAX_FILTER_CONDITIONS} conditions in all"
            )

    def take(self, values: int) -> None:
        self.values += values
        if self.values > MAX_FILTER_VALUES:
            raise BadRequest(
                f"filter is too complex: more than {MAX_FILTER_VALUES} values in all its "
                "match and has_id lists"
            )


Condition = Match | Range | IsEmpty | IsNull | HasId | Nested | AllOf | Filter

_SEGMENT = re.compile(r"^([^.\[\]]+)((?:\[\d*\])*)$")


def parse_key(key: Any) -> tuple[PathPart, ...]:
    """``a.b[].c`` → path parts (raises BadRequest on an empty or malformed key)."""
    if not isinstance(key, str) or not key or len(key) > 512:
        raise BadRequest("filter key must be a non-empty string")
    parts: list[PathPart] = []
    for segment in key.split("."):
        found = _SEGMENT.match(segment)
        if found is None:
            raise BadRequest(f"malformed filter key: {key!r}")
        parts.append(PathPart(found.group(1), None))
        for bracket in re.findall(r"\[(\d*)\]", found.group(2)):
            parts.append(PathPart("", True if bracket == "" else int(bracket)))
    return tuple(parts)


def parse_index_field(name: Any) -> tuple[PathPart, ...]:
    """A payload index's ``field_name``: a valid filter key (``parse_key``), and, as every
    name people choose (``bastion.text``), free of control and invisible formatting
    characters. Any name used to be accepted, and ``GET /collections/{name}`` then
    answered 400 for everyone (issue 11, item 6)."""
    parts = parse_key(name)
    reason = why_unsafe(name)
    if reason is not None:
        raise BadRequest(f"field_name {reason}")
    return parts


def parse_filter(raw: Any) -> Filter:
    """Qdrant ``Filter`` JSON → AST. ``None`` means "no filter" and is the caller's business."""
    budget = _Budget()
    parsed = _parse_filter(raw, 0, budget)
    return replace(parsed, weight=max(1, budget.conditions + budget.values))


def _parse_filter(raw: Any, depth: int, budget: _Budget) -> Filter:
    if not isinstance(raw, dict):
        raise BadRequest("filter must be a JSON object")
    if depth > MAX_DEPTH:
        raise BadRequest("filter is nested too deeply")
    unknown = set(raw) - {"must", "should", "must_not", "min_should"}
    if unknown:
        raise BadRequest(f"unknown filter field: {sorted(unknown)[0]!r}")
    sections: dict[str, tuple[Condition, ...]] = {}
    for section in ("must", "should", "must_not"):
        sections[section] = _parse_conditions(raw.get(section), section, depth, budget)
    min_should = None
    if raw.get("min_should") is not None:
        spec = raw["min_should"]
        if not isinstance(spec, dict) or set(spec) - {"conditions", "min_count"}:
            raise BadRequest("min_should must be {conditions, min_count}")
        count = spec.get("min_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BadRequest("min_should.min_count must be a non-negative integer")
        conditions = _parse_conditions(
            spec.get("conditions"), "min_should.conditions", depth, budget
        )
        min_should = (conditions, count)
    return Filter(sections["must"], sections["should"], sections["must_not"], min_should)


def _parse_conditions(raw: Any, where: str, depth: int, budget: _Budget) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):  # Qdrant accepts a single condition in place of a list
        raw = [raw]
    if not isinstance(raw, list):
        raise BadRequest(f"{where} must be a list of conditions")
    if len(raw) > MAX_LIST_CONDITIONS:
        raise BadRequest(f"{where} has too many conditions")
    return tuple(_parse_condition(item, depth, budget) for item in raw)


def _parse_condition(raw: Any, depth: int, budget: _Budget) -> Condition:
    if not isinstance(raw, dict):
        raise BadRequest("a filter condition must be a JSON object")
    budget.condition()
    fields = {name for name, value in raw.items() if value is not None}
    if fields & {"must", "should", "must_not", "min_should"} or not fields:
        nested = {k: v for k, v in raw.items() if v is not None}
        return _parse_filter(nested, depth + 1, budget)
    if "has_id" in fields:
        _only(raw, {"has_id"})
        ids = _list(raw["has_id"], "has_id")
        budget.take(len(ids))
        return HasId(frozenset(parse_point_id(item) for item in ids))
    if "is_empty" in fields and "key" not in fields:
        _only(raw, {"is_empty"})
        return IsEmpty(parse_key(_object(raw["is_empty"], "is_empty", {"key"}).get("key")))
    if "is_null" in fields and "key" not in fields:
        _only(raw, {"is_null"})
        return IsNull(parse_key(_object(raw["is_null"], "is_null", {"key"}).get("key")))
    if "nested" in fields:
        _only(raw, {"nested"})
        spec = _object(raw["nested"], "nested", {"key", "filter"})
        return Nested(
            parse_key(spec.get("key")), _parse_filter(spec.get("filter"), depth + 1, budget)
        )
    if "key" in fields:
        return _parse_field_condition(raw, budget)
    raise BadRequest(f"unknown filter condition: {sorted(fields)[0]!r}")


def _parse_field_condition(raw: dict[str, Any], budget: _Budget) -> Condition:
    key = parse_key(raw["key"])
    checks: list[Condition] = []
    for name, value in raw.items():
        if value is None or name == "key":
            continue
        if name == "match":
            match = _parse_match(key, value)
            budget.take(len(match.values))
            checks.append(match)
        elif name == "range":
            checks.append(_parse_range(key, value, count=False))
        elif name == "values_count":
            checks.append(_parse_range(key, value, count=True))
        elif name == "is_empty" and isinstance(value, bool):
            checks.append(IsEmpty(key) if value else Filter(must_not=(IsEmpty(key),)))
        elif name == "is_null" and isinstance(value, bool):
            checks.append(IsNull(key) if value else Filter(must_not=(IsNull(key),)))
        elif name.startswith("geo_"):
            raise BadRequest(f"filter condition {name!r} is not supported by Bastion")
        else:
            raise BadRequest(f"unknown field condition operator: {name!r}")
    if not checks:
        raise BadRequest("a field condition needs match, range, values_count, is_empty or is_null")
    return checks[0] if len(checks) == 1 else AllOf(tuple(checks))


def _parse_match(key: tuple[PathPart, ...], raw: Any) -> Match:
    spec = _object(raw, "match", {"value", "any", "except", "text"})
    present = [name for name, value in spec.items() if value is not None]
    if len(present) != 1:
        raise BadRequest("match needs exactly one of value, any, except, text")
    kind = present[0]
    if kind == "value":
        return Match(key, kind, (_scalar(spec["value"]),))
    if kind == "text":
        if not isinstance(spec["text"], str):
            raise BadRequest("match.text must be a string")
        return Match(key, kind, (spec["text"],))
    return Match(key, kind, tuple(_scalar(item) for item in _list(spec[kind], f"match.{kind}")))


def _parse_range(key: tuple[PathPart, ...], raw: Any, *, count: bool) -> Range:
    what = "values_count" if count else "range"
    spec = _object(raw, what, {"gt", "gte", "lt", "lte"})
    bounds: dict[str, float | None] = {}
    for name in ("gt", "gte", "lt", "lte"):
        value = spec.get(name)
        if value is None:
            bounds[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{what}.{name} must be a number")
        if not math.isfinite(value):
            raise BadRequest(f"{what}.{name} must be finite")
        bounds[name] = value
    return Range(key, count=count, **bounds)


def _scalar(value: Any) -> Scalar:
    if isinstance(value, str | bool | int):
        return value
    raise BadRequest("match values must be strings, integers or booleans")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(f"{where} must be a list")
    if len(value) > 100_000:
        raise BadRequest(f"{where} is too long")
    return value


def _object(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object")
    unknown = set(value) - allowed
    if unknown:
        raise BadRequest(f"unknown {where} operator: {sorted(unknown)[0]!r}")
    return value


def _only(raw: dict[str, Any], allowed: set[str]) -> None:
    extra = {name for name, value in raw.items() if value is not None} - allowed
    if extra:
        raise BadRequest(f"unexpected field in filter condition: {sorted(extra)[0]!r}")
