"""Attacks on the audit log by someone who can write the whole data folder: the database
*and* the signing key beside it (issue 11, item 7).

Such an attacker drops the append-only triggers, deletes the tail of the chain with its
checkpoints, or rewrites history, recomputes every hash and signs the forged head with
the folder's own key: ``bastion audit verify`` then says "intact" (each test shows it).
What they cannot reach is the copy of each checkpoint the server sent out of the folder
when it made it (``BASTION_AUDIT_CHECKPOINT_SINK``): ``verify --against`` that export
catches every one of these attacks.

The installation is the real one: ``Runtime.open`` on a data folder with a file sink,
events appended with ``emit`` as every service does, checkpoints made by
``checkpoint_audit`` (what the server runs every five minutes), the CLI run in-process.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select, update
from typer.testing import CliRunner

from bastion.app import checkpoint_audit
from bastion.audit import (
    AuditEvent,
    StoredEvent,
    checkpoint_message,
    emit,
    format_timestamp,
    link_hash,
)
from bastion.audit.chain import encode_signature
from bastion.cli.main import app
from bastion.clock import ManualClock
from bastion.config import load_settings
from bastion.runtime import Runtime
from bastion.storage.schema import audit_checkpoints, audit_events
from bastion.tokens import KeyRing

ROUND = 10  # events between two checkpoints (one every 25 s, a checkpoint after 250 s)


@dataclass
class Installation:
    rt: Runtime
    clock: ManualClock
    sink: Path

    @property
    def data_dir(self) -> Path:
        return self.rt.settings.data_dir

    def append(self, count: int, *, every: float = 25.0) -> None:
        for _ in range(count):
            self.clock.advance(every)
            with self.rt.db.begin() as conn:
                event = AuditEvent(
                    "points.upserted", "success", "usr_1", None, "collection:docs",
                    details={"collection": "docs", "count": 1},
                )  # fmt: skip
                emit(conn, event, now=self.clock.now())

    def restart(self, **settings: Any) -> None:
        """Stop and start the server with other settings (same folder, same clock)."""
        self.rt.close()
        values = {**self.rt.settings.model_dump(), **settings}
        self.rt = Runtime.open(load_settings(**values), clock=self.clock)

    def checkpoint(self) -> None:
        checkpoint_audit(self.rt)  # what the server's housekeeping runs every five minutes

    def exported(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.sink.read_text().splitlines()]


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    """Four rounds of events, each followed by a checkpoint: exported at seq 10 … 40.

    The clock starts a day ago, so the CLI (the real clock) verifies a day later.
    """
    outside = tmp_path / "log"  # another folder, another owner in production
    outside.mkdir()
    settings = load_settings(
        data_dir=tmp_path / "data",
        argon2_profile="test",
        audit_checkpoint_sink=f"file://{outside / 'checkpoints.jsonl'}",
    )
    clock = ManualClock(datetime.now(UTC) - timedelta(days=1))
    rt = Runtime.open(settings, clock=clock)
    installation = Installation(rt, clock, outside / "checkpoints.jsonl")
    for _ in range(4):
        installation.append(ROUND)
        installation.checkpoint()
    assert [line["seq"] for line in installation.exported()] == [10, 20, 30, 40]
    try:
        yield installation
    finally:
        rt.close()


def bastion(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        app, list(args), env={"BASTION_ARGON2_PROFILE": "test", **(env or {})}
    )


def verify(installation: Installation, *extra: str) -> tuple[int, dict[str, Any]]:
    result = bastion("audit", "verify", "--json", "--data-dir", str(installation.data_dir), *extra)
    assert result.exit_code in (0, 1, 3), result.output
    return result.exit_code, json.loads(result.stdout)


def verify_against(installation: Installation) -> tuple[int, dict[str, Any]]:
    return verify(installation, "--against", str(installation.sink))


# -- what an attacker with the data folder does ------------------------------------------


def tamper(installation: Installation, *statements: str, keep: int = 0) -> None:
    """Drop the append-only triggers, then run ``statements`` (``:keep`` bound)."""
    with closing(sqlite3.connect(installation.data_dir / "bastion.db")) as db:
        for table in ("audit_events", "audit_checkpoints"):
            for verb in ("update", "delete"):
                db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        for statement in statements:
            db.execute(statement, {"keep": keep})
        db.commit()


def truncate(installation: Installation, *, keep: int) -> None:
    """Delete every event after ``keep`` and every checkpoint that named one of them."""
    tamper(
        installation,
        "DELETE FROM audit_events WHERE seq > :keep",
        "DELETE FROM audit_checkpoints WHERE seq > :keep",
        keep=keep,
    )


def rewrite_from(installation: Installation, start: int) -> None:
    """Change event ``start``, recompute every hash after it, and sign every stored
    checkpoint again with the key in the data folder: a consistent forgery."""
    tamper(installation)
    ring = KeyRing.load_or_create(installation.data_dir / "keys", now=datetime.now(UTC))
    with installation.rt.db.begin() as conn:
        rows = conn.execute(select(audit_events).order_by(audit_events.c.seq)).all()
        events = [StoredEvent.from_row(row) for row in rows]
        prev = events[start - 2].hash if start > 1 else "0" * 64
        hashes: dict[int, str] = {}
        for event in events[start - 1 :]:
            record = event.record()
            if event.seq == start:
                record["details"] = {"collection": "docs", "count": 0}
            digest = link_hash(prev, record)
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == event.seq)
                .values(details=record["details"], prev_hash=prev, hash=digest)
            )
            hashes[event.seq] = prev = digest
        for seq, digest in hashes.items():
            kid, signature = ring.sign(checkpoint_message(seq, digest))
            conn.execute(
                update(audit_checkpoints)
                .where(audit_checkpoints.c.seq == seq)
                .values(hash=digest, kid=kid, signature=encode_signature(signature))
            )


# -- the attacks -------------------------------------------------------------------------


def test_audit_tail_truncation_detected_against_exported_checkpoint(
    installation: Installation,
) -> None:
    truncate(installation, keep=25)  # the tail and its checkpoints (30, 40) are gone
    code, report = verify(installation)
    assert (report["ok"], report["events"]) == (True, 25)  # the chain alone verifies: fooled
    # ... but its last events wait for a checkpoint since a day: a warning, not proof
    assert (code, report["gaps"][0]["first_seq"], report["gaps"][0]["checkpointed_at"]) == (
        3, 21, None,
    )  # fmt: skip

    code, report = verify_against(installation)
    assert (code, report["status"]) == (1, "broken")
    assert report["problem"]["seq"] == 26
    assert "events from seq 26 on were deleted" in report["problem"]["message"]
    assert "up to seq 30" in report["problem"]["message"]
    assert report["export"]["matched"] == 2  # 10 and 20 still match


def test_audit_tail_truncation_with_resigned_head_detected(installation: Installation) -> None:
    truncate(installation, keep=25)
    installation.append(20)  # and new events on top, past the exported seq 40
    signed = bastion("audit", "checkpoint", "--data-dir", str(installation.data_dir))
    assert signed.exit_code == 0, signed.output
    assert verify(installation)[1]["ok"] is True

    code, report = verify_against(installation)
    assert code == 1
    assert report["problem"]["seq"] == 30
    assert "rewritten" in report["problem"]["message"]


def test_audit_rewrite_with_recomputed_hashes_detected(installation: Installation) -> None:
    rewrite_from(installation, 15)
    code, report = verify(installation)
    assert (code, report["checkpoints_checked"]) == (0, 4)  # every checkpoint re-signed: fooled

    code, report = verify_against(installation)
    assert code == 1
    assert report["problem"]["seq"] == 20  # the first exported checkpoint after the change
    assert "rewritten" in report["problem"]["message"]
    assert "hashes were recomputed" in report["problem"]["message"]
    assert report["events"] == 19


def test_audit_forged_resigned_head_detected(installation: Installation) -> None:
    """The attacker deletes the database's checkpoints, rewrites, and has Bastion itself
    sign the forged head (``bastion audit checkpoint``), even into the sink."""
    tamper(installation, "DELETE FROM audit_checkpoints")
    rewrite_from(installation, 15)
    sink = {"BASTION_AUDIT_CHECKPOINT_SINK": f"file://{installation.sink}"}
    signed = bastion("audit", "checkpoint", "--data-dir", str(installation.data_dir), env=sink)
    assert signed.exit_code == 0, signed.output
    assert "Sent to" in signed.stdout
    assert [line["seq"] for line in installation.exported()] == [10, 20, 30, 40, 40]
    code, report = verify(installation)
    assert (report["ok"], report["checkpoints_checked"]) == (True, 1)  # signed: fooled
    assert report["gaps"][0]["first_seq"] == 1  # only a day-long wait for that checkpoint

    code, report = verify_against(installation)
    assert code == 1
    assert report["problem"]["seq"] == 20
    assert "rewritten" in report["problem"]["message"]


def test_audit_rewrite_from_the_first_event_detected(installation: Installation) -> None:
    rewrite_from(installation, 1)
    assert verify(installation)[0] == 0

    code, report = verify_against(installation)
    assert code == 1
    assert report["problem"]["seq"] == 1
    assert "rewritten from its first event" in report["problem"]["message"]


def test_audit_checkpoint_gap_while_events_kept_coming_reported(
    installation: Installation,
) -> None:
    """The sink stops taking checkpoints for two hours while events keep coming."""
    installation.sink.rename(installation.sink.with_suffix(".saved"))
    installation.sink.mkdir()  # any open() of it fails now
    silenced_at = installation.clock.now()
    for _ in range(24):  # two hours: a round of events and a checkpoint every five minutes
        installation.append(ROUND, every=30)
        installation.checkpoint()
    installation.sink.rmdir()
    installation.sink.with_suffix(".saved").rename(installation.sink)
    installation.append(ROUND, every=30)
    installation.checkpoint()  # delivers the 24 waiting ones, then the new one
    assert len(installation.exported()) == 4 + 24 + 1

    code, report = verify_against(installation)
    assert (code, report["status"]) == (0, "intact")  # late, but every checkpoint arrived

    # Now the stretch is deleted from the export (or had never reached it).
    lines = installation.sink.read_text().splitlines()
    installation.sink.write_text("\n".join(lines[:4] + lines[-1:]) + "\n")
    code, report = verify_against(installation)
    assert (code, report["status"], report["gap_count"]) == (3, "warnings", 1)
    [gap] = report["gaps"]
    assert (gap["first_seq"], gap["last_seq"]) == (41, 41 + 25 * ROUND - 1)
    assert gap["first_event_at"] == format_timestamp(silenced_at + timedelta(seconds=30))
    assert gap["waited_seconds"] > 2 * 3600
    assert "waited 2h" in gap["message"]


def test_audit_last_exported_checkpoint_far_older_than_the_newest_event_reported(
    installation: Installation,
) -> None:
    """The sink was taken out of the configuration: the server goes on signing in the data
    folder only, and the export ends an hour before the newest event."""
    installation.restart(audit_checkpoint_sink=())
    for _ in range(12):
        installation.append(ROUND)
        installation.checkpoint()
    assert verify(installation)[0] == 0

    code, report = verify_against(installation)
    assert (code, report["status"]) == (3, "warnings")
    [gap] = report["gaps"]
    assert gap["first_seq"] == 41
    assert gap["checkpointed_at"] is None
    assert "covered by no checkpoint" in gap["message"]
    assert report["last_trusted_checkpoint"]["seq"] == 40
    assert report["head"]["seq"] == 40 + 12 * ROUND


def test_audit_running_server_refuses_to_sign_a_rewritten_or_truncated_chain(
    installation: Installation,
) -> None:
    """Under a running server the forgery is also refused at the next checkpoint: the server
    verifies from the checkpoint it made itself, not from the database's."""
    rewrite_from(installation, 35)
    installation.append(3)
    with pytest.raises(Exception, match="rewritten") as refused:
        installation.checkpoint()
    assert type(refused.value).__name__ == "AuditChainBroken"
    truncate(installation, keep=38)
    with pytest.raises(Exception, match="events from seq 39 on were deleted"):
        installation.checkpoint()
    assert [line["seq"] for line in installation.exported()] == [10, 20, 30, 40]
