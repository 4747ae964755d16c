"""Qdrant filters (the AST of ``vectors/filters.py``) → a SQL ``WHERE`` over ``jsonb``.

The SQL text is made of fixed fragments chosen by the *shape* of the filter; every key
and value reaches the server as a bind parameter: point ids as ``text[]``, values as
``jsonb`` documents or arrays, key paths as ``jsonpath`` values. A key path is written
as a jsonpath member chain whose names are JSON string literals (``$."a"."b"[*]``), so
no key can change the path's structure; values are never inside a jsonpath, they travel
in its ``vars`` document.

Semantics are those of ``vectors/predicates.py`` (and Qdrant): lax jsonpath unwraps an
array met along the path, and the trailing ``[*]`` yields the elements of an array at
the end (a scalar yields itself), as ``predicates.extract`` does. Two differences remain,
both from PostgreSQL's types: a payload number ``1.0`` equals a match value ``1`` (jsonb
compares numbers by value), and a key or string holding U+0000 cannot be stored, so a
condition on one matches nothing.

A match on a top-level key is written as containment (``payload @> {"k": v}`` or
``{"k": [v]}``), which the collection's GIN index (``jsonb_path_ops``, made by the first
payload index) serves; every other condition is evaluated on the rows it is asked about.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anyio.to_thread
from psycopg import sql
from psycopg.types.json import Jsonb

from bastion.vectors.errors import BadRequest
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

TRUE = sql.SQL("TRUE")
FALSE = sql.SQL("FALSE")
_INDEXED_ALTERNATIVES = 16  # up to this many values: one containment test each (GIN)
_MAX_ARRAY_INDEX = 2**31 - 1  # jsonpath subscripts are int4
MAX_PARAMETERS = 30_000  # PostgreSQL's protocol allows 65,535 per statement


# A filter heavier than this (``Filter.weight``: conditions + values) is compiled in a
# worker thread (``compiled``): ~10 µs per condition would stall the event loop.
ON_LOOP_WEIGHT = 256


async def compiled(where: Where, node: Filter) -> sql.Composable:
    """``where.filter(node)``, in a worker thread when ``node`` is heavy."""
    if node.weight <= ON_LOOP_WEIGHT:
        return where.filter(node)
    return await anyio.to_thread.run_sync(where.filter, node)


class Where:
    """Compiles one filter; ``params`` holds the values its placeholders name."""

    def __init__(self, prefix: str = "f") -> None:
        self.params: dict[str, Any] = {}
        self._prefix = prefix
        self._aliases = 0

    def bind(self, value: Any) -> sql.Placeholder:
        if len(self.params) >= MAX_PARAMETERS:
            raise BadRequest("filter is too large for one query: use fewer conditions")
        name = f"{self._prefix}{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def _alias(self) -> sql.Identifier:
        self._aliases += 1
        return sql.Identifier(f"{self._prefix}_v{self._aliases}")

    # -- filters -----------------------------------------------------------------------

    def filter(
        self, node: Filter, payload: sql.Composable = sql.Identifier("payload")
    ) -> sql.Composable:
        parts = [self.condition(c, payload) for c in node.must]
        parts += [sql.SQL("NOT ({})").format(self.condition(c, payload)) for c in node.must_not]
        if node.should:
            parts.append(_joined(" OR ", (self.condition(c, payload) for c in node.should)))
        if node.min_should is not None:
            conditions, needed = node.min_should
            if needed > len(conditions):
                return FALSE
            if needed > 0:
                hits = _joined(
                    " + ",
                    (sql.SQL("({})::int").format(self.condition(c, payload)) for c in conditions),
                )
                parts.append(sql.SQL("({}) >= {}").format(hits, sql.Literal(needed)))
        return _joined(" AND ", parts) if parts else TRUE

    def condition(self, node: Condition, payload: sql.Composable) -> sql.Composable:
        if isinstance(node, Filter):
            return self.filter(node, payload)
        if isinstance(node, AllOf):
            return _joined(" AND ", (self.condition(c, payload) for c in node.conditions))
        if isinstance(node, HasId):
            if not node.keys:
                return FALSE
            return sql.SQL("point_id = ANY({}::text[])").format(self.bind(sorted(node.keys)))
        path = jsonpath(node.key)
        if isinstance(node, IsEmpty):
            return sql.SQL("NOT EXISTS ({})").format(
                self._values(payload, path, "{v} <> 'null'::jsonb")
            )
        if isinstance(node, IsNull):
            return sql.SQL("EXISTS ({})").format(self._values(payload, path, "{v} = 'null'::jsonb"))
        if path is None:  # a key no stored payload can hold: it has no values
            if isinstance(node, Range) and node.count:
                return self._bounds(sql.SQL("0"), node)
            return FALSE
        if isinstance(node, Nested):
            alias = self._alias()
            inner = self.filter(node.filter, sql.SQL("{}.v").format(alias))
            return sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_path_query({p}, {path}::jsonpath) AS {a}(v) "
                "WHERE jsonb_typeof({a}.v) = 'object' AND {inner})"
            ).format(p=payload, path=self.bind(path), a=alias, inner=inner)
        if isinstance(node, Range):
            return self._range(node, payload, path)
        return self._match(node, payload, path)

    # -- conditions on values ----------------------------------------------------------

    def _values(self, payload: sql.Composable, path: str | None, where: str) -> sql.Composable:
        """``SELECT 1`` from the values ``path`` reaches that satisfy ``where`` (``{v}``)."""
        if path is None:
            return sql.SQL("SELECT 1 WHERE FALSE")
        alias = self._alias()
        value = sql.SQL("{}.v").format(alias)
        return sql.SQL(
            "SELECT 1 FROM jsonb_path_query({p}, {path}::jsonpath) AS {a}(v) WHERE {w}"
        ).format(p=payload, path=self.bind(path), a=alias, w=sql.SQL(where).format(v=value))

    def _match(self, node: Match, payload: sql.Composable, path: str) -> sql.Composable:
        if node.kind == "text":
            needle = node.values[0]
            if not isinstance(needle, str) or "\x00" in needle:
                return FALSE
            alias = self._alias()
            return sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_path_query({p}, {path}::jsonpath) AS {a}(v) "
                "WHERE jsonb_typeof({a}.v) = 'string' AND strpos({a}.v #>> '{{}}', {n}) > 0)"
            ).format(p=payload, path=self.bind(path), a=alias, n=self.bind(needle))
        values = [value for value in node.values if storable(value)]
        if node.kind == "except":
            alias = self._alias()
            return sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_path_query({p}, {path}::jsonpath) AS {a}(v) "
                "WHERE {a}.v <> 'null'::jsonb AND NOT ({a}.v = ANY({w}::jsonb[])))"
            ).format(
                p=payload, path=self.bind(path), a=alias, w=self.bind([Jsonb(v) for v in values])
            )
        if not values:
            return FALSE
        if len(node.key) == 1 and node.key[0].index is None:  # top level: containment (GIN)
            name = node.key[0].name
            documents = [Jsonb({name: shape}) for v in values for shape in (v, [v])]
            if len(values) <= _INDEXED_ALTERNATIVES:
                return _joined(
                    " OR ",
                    (sql.SQL("{} @> {}").format(payload, self.bind(d)) for d in documents),
                )
            return sql.SQL("{} @> ANY({}::jsonb[])").format(payload, self.bind(documents))
        alias = self._alias()
        return sql.SQL(
            "EXISTS (SELECT 1 FROM jsonb_path_query({p}, {path}::jsonpath) AS {a}(v) "
            "WHERE {a}.v = ANY({w}::jsonb[]))"
        ).format(p=payload, path=self.bind(path), a=alias, w=self.bind([Jsonb(v) for v in values]))

    def _range(self, node: Range, payload: sql.Composable, path: str) -> sql.Composable:
        if node.count:
            alias = self._alias()
            counted = sql.SQL(
                "(SELECT count(*) FROM jsonb_path_query({p}, {path}::jsonpath) AS {a}(v) "
                "WHERE {a}.v <> 'null'::jsonb)"
            ).format(p=payload, path=self.bind(path), a=alias)
            return self._bounds(counted, node)
        checks, bounds = [], {}
        for name, operator in (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")):
            value = getattr(node, name)
            if value is not None:
                checks.append(f"@ {operator} ${name}")
                bounds[name] = value
        if not checks:  # no bound: any number
            checks.append('@.type() == "number"')
        predicate = f"{path} ? ({' && '.join(checks)})"
        return sql.SQL("jsonb_path_exists({p}, {path}::jsonpath, {vars}::jsonb)").format(
            p=payload, path=self.bind(predicate), vars=self.bind(Jsonb(bounds))
        )

    def _bounds(self, number: sql.Composable, node: Range) -> sql.Composable:
        parts = [
            sql.SQL("{} {} {}").format(number, sql.SQL(operator), self.bind(value))
            for value, operator in (
                (node.gt, ">"),
                (node.gte, ">="),
                (node.lt, "<"),
                (node.lte, "<="),
            )
            if value is not None
        ]
        return _joined(" AND ", parts) if parts else TRUE


def jsonpath(key: tuple[PathPart, ...]) -> str | None:
    """The lax jsonpath of every value ``key`` reaches (None: a key no payload can hold)."""
    out = ["$"]
    for part in key:
        if part.index is None:
            if "\x00" in part.name:
                return None
            out.append("." + json.dumps(part.name, ensure_ascii=False))
        elif part.index is True:
            out.append("[*]")
        elif part.index > _MAX_ARRAY_INDEX:
            return None
        else:
            out.append(f"[{int(part.index)}]")
    out.append("[*]")
    return "".join(out)


def storable(value: Any) -> bool:
    """Whether jsonb can hold ``value`` (text cannot hold U+0000)."""
    return not (isinstance(value, str) and "\x00" in value)


def _joined(separator: str, parts: Iterable[sql.Composable]) -> sql.Composable:
    items = list(parts)
    if not items:
        return TRUE
    if len(items) == 1:
        return items[0]
    return sql.SQL("(") + sql.SQL(separator).join(items) + sql.SQL(")")
