"""Keys and values that look like SQL or jsonpath are only data, on every engine: the
pgvector engine sends them as bind parameters, never as SQL text."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bastion.vectors import (
    CollectionSpec,
    PayloadSelector,
    PointWrite,
    VectorEngine,
    key_to_id,
    parse_filter,
    parse_point_id,
)
from tests.dataplane.conftest import ACTOR, run

WEIRD = [
    "a'); DROP TABLE collections; --",
    'quote"inside',
    "back\\slash",
    "$x ? (@ == 1) || true",
    "line\nbreak",
    "ünïcødé ✓",
]
POINTS: dict[int, dict[str, Any]] = {
    1: {key: "hit" for key in WEIRD} | {"deep": {WEIRD[0]: [WEIRD[1]]}},
    2: {key: "miss" for key in WEIRD},
    3: {"text": "a'); DROP TABLE x; --", "zero": "a\u2028b"},
}


def _matching(engine: VectorEngine, raw: dict[str, Any]) -> list[int]:
    page = run(
        engine.scroll(
            "ten_a",
            "k",
            filter=parse_filter(raw),
            offset_key=None,
            limit=10,
            with_payload=PayloadSelector(enabled=False),
            with_vector=False,
        )
    )
    return [int(key_to_id(point.key)) for point in page.points]


@pytest.fixture
def loaded(engine: VectorEngine) -> VectorEngine:
    spec = CollectionSpec(name="k", dim=2, distance="Dot")
    run(engine.create_collection("ten_a", spec, actor=ACTOR))
    writes = [PointWrite(parse_point_id(i), payload) for i, payload in POINTS.items()]
    run(engine.upsert("ten_a", "k", writes, np.ones((len(writes), 2), np.float32), actor=ACTOR))
    return engine


@pytest.mark.parametrize("key", WEIRD)
def test_a_key_that_looks_like_code_is_a_key(loaded: VectorEngine, key: str) -> None:
    assert _matching(loaded, {"must": [{"key": key, "match": {"value": "hit"}}]}) == [1]
    assert _matching(loaded, {"must": [{"key": key, "match": {"any": ["hit", "x"]}}]}) == [1]
    assert _matching(loaded, {"must": [{"key": key, "match": {"text": "mis"}}]}) == [2]
    assert _matching(loaded, {"must": [{"is_empty": {"key": key}}]}) == [3]


def test_values_that_look_like_code_are_values(loaded: VectorEngine) -> None:
    raw = {"must": [{"key": "text", "match": {"value": "a'); DROP TABLE x; --"}}]}
    assert _matching(loaded, raw) == [3]
    assert _matching(loaded, {"must": [{"key": "text", "match": {"text": "'); DROP"}}]}) == [3]
    nested = {"must": [{"key": f"deep.{WEIRD[0]}", "match": {"value": WEIRD[1]}}]}
    assert _matching(loaded, nested) == [1]
    assert run(loaded.count("ten_a", "k", filter=None)) == 3  # nothing was dropped


def test_a_nul_character_in_a_filter_matches_nothing_and_breaks_nothing(
    loaded: VectorEngine,
) -> None:
    assert _matching(loaded, {"must": [{"key": "te\x00xt", "match": {"value": "x"}}]}) == []
    assert _matching(loaded, {"must": [{"key": "text", "match": {"value": "a\x00"}}]}) == []
    assert _matching(loaded, {"must": [{"key": "text", "match": {"text": "\x00"}}]}) == []
    assert _matching(loaded, {"must_not": [{"key": "te\x00xt", "match": {"any": ["x"]}}]}) == [
        1,
        2,
        3,
    ]
