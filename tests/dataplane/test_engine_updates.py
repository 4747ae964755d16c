"""Conditional upserts on both engines: ``update_filter`` and ``update_mode``.

A point that the filter or the mode protects keeps its vector and payload; new points are
inserted (unless ``update_only``); the audit event counts what was written."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bastion.vectors import HnswParams, PayloadSelector, VectorEngine, key_to_id, parse_filter
from bastion.vectors.errors import PointNotFound
from bastion.vectors.payloads import PayloadChange
from tests.dataplane.conftest import ACTOR, run
from tests.dataplane.test_engine import DIM, A, spec, writes

ALL = PayloadSelector()


def _state(engine: VectorEngine) -> dict[Any, Any]:
    found = run(
        engine.retrieve(
            A, "docs", [w.key for w in writes(range(10))], with_payload=ALL, with_vector=False
        )
    )
    return {key_to_id(p.key): p.payload for p in found}


def _seed(engine: VectorEngine) -> None:
    run(engine.create_collection(A, spec(), actor=ACTOR))
    data = np.ones((4, DIM), np.float32)
    run(engine.upsert(A, "docs", writes(range(4), lambda i: {"v": 1, "i": i}), data, actor=ACTOR))


def test_update_filter_changes_only_matching_points(engine: VectorEngine) -> None:
    _seed(engine)
    only_even = parse_filter({"must": [{"key": "i", "match": {"any": [0, 2]}}]})
    new = writes([0, 1, 2, 5], lambda i: {"v": 2, "i": i})
    written = run(
        engine.upsert(
            A, "docs", new, np.ones((4, DIM), np.float32), actor=ACTOR, update_filter=only_even
        )
    )
    assert written == 3  # 0 and 2 match, 5 is new; 1 is protected
    assert _state(engine) == {
        0: {"v": 2, "i": 0},
        1: {"v": 1, "i": 1},
        2: {"v": 2, "i": 2},
        3: {"v": 1, "i": 3},
        5: {"v": 2, "i": 5},
    }


def test_insert_only_never_overwrites_an_existing_point(engine: VectorEngine) -> None:
    _seed(engine)
    new = writes([1, 7], lambda i: {"v": 2, "i": i})
    written = run(
        engine.upsert(
            A, "docs", new, np.ones((2, DIM), np.float32), actor=ACTOR, mode="insert_only"
        )
    )
    assert written == 1
    state = _state(engine)
    assert state[1] == {"v": 1, "i": 1}
    assert state[7] == {"v": 2, "i": 7}


def test_update_only_creates_no_point(engine: VectorEngine) -> None:
    _seed(engine)
    new = writes([1, 8], lambda i: {"v": 3, "i": i})
    written = run(
        engine.upsert(
            A, "docs", new, np.ones((2, DIM), np.float32), actor=ACTOR, mode="update_only"
        )
    )
    assert written == 1
    state = _state(engine)
    assert state[1] == {"v": 3, "i": 1}
    assert 8 not in state
    assert run(engine.count(A, "docs", filter=None)) == 4


def test_nothing_to_write_is_not_an_error(engine: VectorEngine) -> None:
    _seed(engine)
    none = parse_filter({"must": [{"key": "v", "match": {"value": 99}}]})
    written = run(
        engine.upsert(
            A, "docs", writes([0]), np.ones((1, DIM), np.float32), actor=ACTOR, update_filter=none
        )
    )
    assert written == 0
    assert _state(engine)[0] == {"v": 1, "i": 0}


# -- payload operations --------------------------------------------------------------


def _change(operation: Any, **kwargs: Any) -> PayloadChange:
    return PayloadChange(operation, **kwargs)


def test_set_payload_merges_and_keeps_payload_indexes_right(engine: VectorEngine) -> None:
    _seed(engine)
    run(engine.create_payload_index(A, "docs", "v", "integer", actor=ACTOR))
    two = parse_filter({"must": [{"key": "v", "match": {"value": 2}}]})
    ids = [w.key for w in writes([1, 3])]
    changed = run(
        engine.update_payload(A, "docs", _change("set", payload={"v": 2}), keys=ids, actor=ACTOR)
    )
    assert changed == 2
    assert run(engine.count(A, "docs", filter=two)) == 2
    assert _state(engine)[1] == {"v": 2, "i": 1}
    nested = _change("set", payload={"c": 1}, path=("a", "b"))
    run(engine.update_payload(A, "docs", nested, filter=two, actor=ACTOR))
    assert _state(engine)[3] == {"v": 2, "i": 3, "a": {"b": {"c": 1}}}


def test_overwrite_delete_and_clear_payload(engine: VectorEngine) -> None:
    _seed(engine)
    first = [w.key for w in writes([0])]
    run(engine.update_payload(A, "docs", _change("overwrite", payload={"x": 1}), keys=first,
                              actor=ACTOR))  # fmt: skip
    assert _state(engine)[0] == {"x": 1}
    run(engine.update_payload(A, "docs", _change("delete", keys=(("i",),)), filter=parse_filter(
        {"must": [{"key": "v", "match": {"value": 1}}]}), actor=ACTOR))  # fmt: skip
    assert _state(engine)[2] == {"v": 1}
    run(engine.update_payload(A, "docs", _change("clear"), keys=first, actor=ACTOR))
    assert _state(engine)[0] == {}
    empty = parse_filter({"must": [{"is_empty": {"key": "x"}}]})
    assert run(engine.count(A, "docs", filter=empty)) == 4


def test_a_missing_point_changes_nothing(engine: VectorEngine) -> None:
    _seed(engine)
    ids = [w.key for w in writes([1, 42])]
    with pytest.raises(PointNotFound, match="42"):
        run(engine.update_payload(A, "docs", _change("clear"), keys=ids, actor=ACTOR))
    assert _state(engine)[1] == {"v": 1, "i": 1}


def test_update_collection_changes_the_exact_search_threshold(engine: VectorEngine) -> None:
    _seed(engine)
    run(engine.update_collection(A, "docs", HnswParams(full_scan_threshold=5), actor=ACTOR))
    assert run(engine.get_collection(A, "docs")).spec.hnsw.full_scan_threshold == 5
    assert run(engine.count(A, "docs", filter=None)) == 4
