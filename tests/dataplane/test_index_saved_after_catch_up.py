"""Issue 16: the index is saved after a catch-up, so that a restart does not replay the
same writes every time ("2 caught up" on every start)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bastion.vectors import parse_point_id
from tests.dataplane.conftest import ACTOR, open_engine, run
from tests.dataplane.test_engine import A, ingest, vectors, writes


def caught_up(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "caught up" in r.getMessage()]


def test_restart_after_a_catch_up_replays_nothing(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(data_dir)
    ingest(engine, 1000, exact_below_kib=1)
    engine.close()  # index saved at this version
    late = open_engine(data_dir)
    run(late.upsert(A, "docs", writes([5000], {"late": 1}), vectors(1, seed=3), actor=ACTOR))
    run(late.delete_points(A, "docs", keys=[parse_point_id(0)], actor=ACTOR))
    # no close(): as if killed after two writes
    with caplog.at_level(logging.INFO, logger="bastion"):
        again = open_engine(data_dir)
        assert caught_up(caplog) == [
            "collection docs: loaded its saved index (1000 points, 2 caught up)"
        ]
        again.close()  # the caught-up index is saved
        caplog.clear()
        third = open_engine(data_dir)
        assert caught_up(caplog) == [
            "collection docs: loaded its saved index (1000 points, 0 caught up)"
        ]
    [marker] = (data_dir / "vectors").glob("*.json")
    assert json.loads(marker.read_text())["version"] >= 3
    assert run(third.count(A, "docs", filter=None)) == 1000
    third.close()
