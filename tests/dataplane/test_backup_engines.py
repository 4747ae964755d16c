"""Backup and restore on both engines (embedded and pgvector): the same file round-trips,
and a refused point leaves no collection behind on either."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest

from bastion.api.dataplane import info_json, record_json
from bastion.clock import SystemClock
from bastion.vectors import (
    CollectionSpec,
    HnswParams,
    PayloadSelector,
    PointWrite,
    VectorEngine,
    parse_point_id,
)
from bastion.vectors.aliases import Aliases
from bastion.vectors.backup import BackupRefused, header_of
from bastion.vectors.engine import VectorParams
from bastion.vectors.restore import Services, backup_lines, restore
from tests.dataplane.conftest import ACTOR, run

TENANT = "ten_a"
UUID = "0b8f7a52-3f5e-4c1e-9a43-4d1c2e6c9b11"


def services_of(engine: VectorEngine) -> Services:
    db = engine.db  # type: ignore[attr-defined]
    return Services(engine, Aliases(db, SystemClock()), db, SystemClock())


async def _backup(services: Services, name: str) -> bytes:
    info = await services.engine.get_collection(TENANT, name)
    header = header_of(name, info_json(info), [], datetime.now(UTC))
    lines = backup_lines(services, tenant_id=TENANT, name=name, header=header, actor=ACTOR,
                         record_of=record_json)  # fmt: skip
    return b"".join([line async for line in lines])


async def _restore(services: Services, name: str, file: bytes) -> int:
    with tempfile.TemporaryFile() as spool:
        spool.write(file)
        verified = await restore(services, spool, tenant_id=TENANT, name=name, actor=ACTOR,
                                 max_payload_bytes=65536)  # fmt: skip
    return verified.points


def _fill(engine: VectorEngine) -> None:
    run(engine.create_collection(TENANT, CollectionSpec("src", 3, "Euclid"), actor=ACTOR))
    run(engine.create_payload_index(TENANT, "src", "tag", "keyword", actor=ACTOR))
    keys = [parse_point_id(i) for i in [*range(1, 1201), UUID]]
    writes = [PointWrite(key, {"tag": f"t{i % 3}", "i": i}) for i, key in enumerate(keys)]
    vectors = np.arange(len(keys) * 3, dtype=np.float32).reshape(-1, 3) / 7
    run(engine.upsert(TENANT, "src", writes, vectors, actor=ACTOR))


def _points(engine: VectorEngine, name: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return {p.key: (p.payload, p.vector) async for p in engine.export(TENANT, name)}

    return run(read())


def test_a_backup_round_trips_on_this_engine(engine: VectorEngine) -> None:
    _fill(engine)
    services = services_of(engine)
    file = run(_backup(services, "src"))
    assert run(_restore(services, "copy", file)) == 1201
    assert _points(engine, "copy") == _points(engine, "src")
    info = run(engine.get_collection(TENANT, "copy"))
    assert info.spec.dim == 3
    assert info.spec.distance == "Euclid"
    assert set(info.payload_schema) == {"tag"}
    keys = [parse_point_id(UUID)]
    found = run(engine.retrieve(TENANT, "copy", keys, with_payload=PayloadSelector(),
                                with_vector=False))  # fmt: skip
    assert found[0].payload == {"tag": "t0", "i": 1200}


def test_a_refused_point_leaves_nothing_on_this_engine(engine: VectorEngine) -> None:
    _fill(engine)
    services = services_of(engine)
    lines = [orjson.loads(line) for line in run(_backup(services, "src")).splitlines()]
    lines[1150]["vector"] = [1.0, 2.0]  # the second batch: the first is stored by then
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines[:-1])
    trailer = {"trailer": {"points": len(lines) - 2, "sha256": hashlib.sha256(body).hexdigest()}}
    with pytest.raises(BackupRefused) as refused:
        run(_restore(services, "broken", body + orjson.dumps(trailer) + b"\n"))
    assert refused.value.reason == "bad_point"
    assert not run(engine.collection_exists(TENANT, "broken"))
    assert "broken" not in run(engine.list_collections(TENANT))


def test_an_id_twice_in_the_file_leaves_nothing_on_this_engine(engine: VectorEngine) -> None:
    _fill(engine)
    services = services_of(engine)
    lines = [orjson.loads(line) for line in run(_backup(services, "src")).splitlines()]
    lines[1150]["id"] = lines[1]["id"]  # a later batch replaces a point of the first
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines[:-1])
    trailer = {"trailer": {"points": len(lines) - 2, "sha256": hashlib.sha256(body).hexdigest()}}
    with pytest.raises(BackupRefused) as refused:
        run(_restore(services, "twice", body + orjson.dumps(trailer) + b"\n"))
    assert refused.value.reason == "count_mismatch"
    assert not run(engine.collection_exists(TENANT, "twice"))


def test_named_vectors_round_trip_on_this_engine(engine: VectorEngine) -> None:
    """Several named vectors, each with its size and distance, some points lacking one:
    the copy has the same vectors config and the same point lines."""
    spec = CollectionSpec.of_named(
        "multi",
        [VectorParams("text", 3, "Cosine"), VectorParams("image", 2, "Euclid")],
        HnswParams(),
    )
    run(engine.create_collection(TENANT, spec, actor=ACTOR))
    writes = [PointWrite(parse_point_id(i), {"i": i}) for i in range(1, 41)]
    vectors = [
        {"text": np.array([1.0, i, 2.0], np.float32)}
        | ({"image": np.array([i, -i], np.float32)} if i % 2 else {})
        for i in range(1, 41)
    ]
    run(engine.upsert(TENANT, "multi", writes, vectors, actor=ACTOR))
    services = services_of(engine)
    file = run(_backup(services, "multi"))
    assert run(_restore(services, "multi_copy", file)) == 40
    copied = run(engine.get_collection(TENANT, "multi_copy")).spec
    assert [(v.name, v.dim, v.distance) for v in copied.vectors] == [
        ("image", 2, "Euclid"),
        ("text", 3, "Cosine"),
    ]
    again = run(_backup(services, "multi_copy"))
    assert file.splitlines()[1:-1] == again.splitlines()[1:-1]  # every point line the same
    assert b'"image"' in file.splitlines()[1] or b'"image"' in file.splitlines()[2]
