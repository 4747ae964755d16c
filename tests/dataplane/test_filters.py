"""Qdrant filter parsing (malformed input → BadRequest) and semantics on payloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bastion.vectors import (
    BadRequest,
    CollectionSpec,
    PayloadSelector,
    PointWrite,
    SearchQuery,
    VectorEngine,
    key_to_id,
    parse_filter,
    parse_point_id,
)
from bastion.vectors.predicates import compile_filter
from tests.dataplane.conftest import ACTOR, run

POINTS: dict[int, dict[str, Any]] = {
    1: {"city": "Paris", "price": 10, "tags": ["a", "b"], "meta": {"lang": "fr", "n": 1.5}},
    2: {"city": "Berlin", "price": 25.5, "tags": [], "meta": {"lang": "de"}},
    3: {"city": "London", "price": None, "items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 0}]},
    4: {"flag": True, "count": 1},
    5: {},
}


def predicate_matching(raw: dict[str, Any]) -> list[int]:
    predicate = compile_filter(parse_filter(raw))
    return [i for i, payload in POINTS.items() if predicate(parse_point_id(i), payload)]


@pytest.fixture
def matching(engine: VectorEngine) -> Callable[[dict[str, Any]], list[int]]:
    """The points a filter matches through an engine (each engine kind in turn): scroll,
    count and an exact filtered search must agree with each other and the predicate."""
    spec = CollectionSpec(name="f", dim=2, distance="Dot")
    run(engine.create_collection("ten_a", spec, actor=ACTOR))
    writes = [PointWrite(parse_point_id(i), payload) for i, payload in POINTS.items()]
    run(engine.upsert("ten_a", "f", writes, np.ones((len(POINTS), 2), np.float32), actor=ACTOR))

    def through_engine(raw: dict[str, Any]) -> list[int]:
        node = parse_filter(raw)
        page = run(
            engine.scroll(
                "ten_a",
                "f",
                filter=node,
                offset_key=None,
                limit=100,
                with_payload=PayloadSelector(enabled=False),
                with_vector=False,
            )
        )
        found = [int(key_to_id(point.key)) for point in page.points]
        assert run(engine.count("ten_a", "f", filter=node)) == len(found)
        query = SearchQuery(vector=np.ones(2, np.float32), limit=100, filter=node, exact=True)
        searched = run(engine.search("ten_a", "f", query))
        assert sorted(int(key_to_id(hit.key)) for hit in searched) == found
        assert found == predicate_matching(raw)
        return found

    return through_engine


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, [1, 2, 3, 4, 5]),
        ({"must": [{"key": "city", "match": {"value": "Paris"}}]}, [1]),
        ({"must": [{"key": "city", "match": {"any": ["Paris", "London"]}}]}, [1, 3]),
        ({"must": [{"key": "city", "match": {"except": ["Paris"]}}]}, [2, 3]),
        ({"must": [{"key": "tags", "match": {"value": "b"}}]}, [1]),  # arrays: any element
        ({"must": [{"key": "price", "range": {"gt": 10}}]}, [2]),
        ({"must": [{"key": "price", "range": {"gte": 10, "lte": 25.5}}]}, [1, 2]),
        ({"must": [{"key": "meta.lang", "match": {"value": "de"}}]}, [2]),  # nested key
        ({"must": [{"key": "meta.n", "range": {"lt": 2}}]}, [1]),
        ({"must": [{"key": "items[].sku", "match": {"value": "y"}}]}, [3]),
        ({"must": [{"key": "items.qty", "range": {"gte": 1}}]}, [3]),
        ({"must": [{"is_empty": {"key": "tags"}}]}, [2, 3, 4, 5]),
        ({"must": [{"is_null": {"key": "price"}}]}, [3]),
        ({"must": [{"has_id": [1, 5, 77]}]}, [1, 5]),
        ({"must_not": [{"key": "city", "match": {"value": "Paris"}}]}, [2, 3, 4, 5]),
        (
            {
                "should": [
                    {"key": "city", "match": {"value": "Berlin"}},
                    {"key": "flag", "match": {"value": True}},
                ]
            },
            [2, 4],
        ),
        ({"must": [{"key": "count", "match": {"value": True}}]}, []),  # true is not 1
        ({"must": [{"key": "flag", "match": {"value": 1}}]}, []),
        (
            {
                "must": [{"should": [{"has_id": [1, 2]}, {"has_id": [3]}]}],
                "must_not": [{"has_id": [2]}],
            },
            [1, 3],
        ),
        (
            {
                "min_should": {
                    "conditions": [
                        {"key": "city", "match": {"value": "Paris"}},
                        {"key": "price", "range": {"lt": 100}},
                        {"key": "tags", "match": {"value": "a"}},
                    ],
                    "min_count": 2,
                }
            },
            [1],
        ),
        (
            {
                "must": [
                    {
                        "nested": {
                            "key": "items",
                            "filter": {
                                "must": [
                                    {"key": "sku", "match": {"value": "y"}},
                                    {"key": "qty", "range": {"gte": 1}},
                                ]
                            },
                        }
                    }
                ]
            },
            [],  # no single item is both "y" and qty >= 1
        ),
        ({"must": [{"key": "city", "match": {"text": "ond"}}]}, [3]),
        ({"must": [{"key": "tags", "values_count": {"gte": 2}}]}, [1]),
        ({"must": [{"key": "tags", "is_empty": False}]}, [1]),
    ],
)
def test_filter_semantics(
    raw: dict[str, Any], expected: list[int], matching: Callable[[dict[str, Any]], list[int]]
) -> None:
    assert matching(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"must": [{"key": "a", "match": {"valu": 1}}]},  # unknown match operator
        {"must": [{"key": "a", "rnage": {"gt": 1}}]},  # unknown condition operator
        {"must": [{"key": "a", "range": {"gt": "x"}}]},
        {"must": [{"key": "a", "range": {"between": 1}}]},
        {"must": [{"key": "a", "match": {"value": 1.5}}]},
        {"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]},
        {"must": [{"key": "", "match": {"value": 1}}]},
        {"must": [{"key": "a..b", "match": {"value": 1}}]},
        {"must": [{"key": "a"}]},
        {"must": "nope"},
        {"must": [{"has_id": [-1]}]},
        {"must": [{"has_id": "1"}]},
        {"must": [{"frobnicate": {"key": "a"}}]},
        {"maybe": []},
        {"must": [{"key": "loc", "geo_radius": {"center": {"lat": 0, "lon": 0}, "radius": 1}}]},
        {"min_should": {"conditions": [], "min_count": -1}},
    ],
)
def test_malformed_filters_are_refused(raw: Any) -> None:
    with pytest.raises(BadRequest):
        parse_filter(raw)


def test_deeply_nested_filter_is_refused() -> None:
    raw: dict[str, Any] = {"must": [{"has_id": [1]}]}
    for _ in range(40):
        raw = {"must": [raw]}
    with pytest.raises(BadRequest, match="deeply"):
        parse_filter(raw)
