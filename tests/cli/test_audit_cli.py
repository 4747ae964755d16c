"""``bastion audit checkpoint`` with sinks and ``bastion audit verify --against``: output,
``--json`` and exit codes; the first test as an operator runs it (a subprocess), the
others in-process (the same command tree, faster)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from bastion.cli.main import app
from tests.support.cli import bastion, installed

PASSWORD = "tangerine submarine orchestra 9"


def in_process(data_dir: Path, *args: str, sink: str | None = None) -> Result:
    env = {"BASTION_ARGON2_PROFILE": "test"}
    if sink is not None:
        env["BASTION_AUDIT_CHECKPOINT_SINK"] = sink
    return CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env=env)


def test_checkpoint_export_and_verify_against_it(tmp_path: Path) -> None:
    data, export = installed(tmp_path / "data"), tmp_path / "log" / "checkpoints.jsonl"
    export.parent.mkdir()
    sink = {"BASTION_AUDIT_CHECKPOINT_SINK": f"file://{export}"}
    bastion(data, "user", "create", "dora", "--role", "viewer", "--password-stdin",
            stdin=PASSWORD + "\n")  # fmt: skip
    bastion(data, "user", "suspend", "dora")
    signed = bastion(data, "audit", "checkpoint", env=sink)
    assert signed.returncode == 0, signed.stderr
    assert f"Sent to file://{export}." in signed.stdout

    ok = bastion(data, "audit", "verify", "--against", str(export))
    assert ok.returncode == 0, ok.stderr
    assert "exported checkpoints" in ok.stdout
    assert "1 of 1 matched" in ok.stdout
    assert "audit log intact" in ok.stdout

    # One checkpoint's JSON, pretty-printed, on stdin.
    one = json.dumps(json.loads(export.read_text().splitlines()[0]), indent=2)
    piped = bastion(data, "audit", "verify", "--against", "-", "--json", stdin=one)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["export"]["matched"] == 1

    with closing(sqlite3.connect(data / "bastion.db")) as db:
        db.execute("DROP TRIGGER audit_events_no_delete")
        db.execute("DROP TRIGGER audit_checkpoints_no_delete")
        db.execute("DELETE FROM audit_events WHERE seq > 1")
        db.execute("DELETE FROM audit_checkpoints")
        db.commit()
    broken = bastion(data, "audit", "verify", "--against", str(export))
    assert broken.returncode == 1
    assert "audit log broken at event seq 2" in broken.stderr
    assert "were deleted" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_checkpoint_that_reached_no_sink_says_so(tmp_path: Path) -> None:
    data, down = installed(tmp_path / "data"), tmp_path / "down"
    down.mkdir()
    made = in_process(data, "key", "create", "--service-account", "ingest", "--role", "viewer")
    assert made.exit_code == 0, made.output  # audited: something to sign
    signed = in_process(data, "audit", "checkpoint", sink=f"file://{down}")
    assert signed.exit_code == 1
    assert "Signed checkpoint at seq" in signed.stdout
    assert f"not sent to file://{down}" in signed.stderr.replace("\n", "")
    again = in_process(data, "audit", "checkpoint", "--json")
    assert json.loads(again.stdout) == {"checkpoint": None, "sinks": []}  # nothing new


def test_unusable_against_files_exit_2_with_a_reason(tmp_path: Path) -> None:
    data = installed(tmp_path / "data")
    missing = in_process(data, "audit", "verify", "--against", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\nworld\n")
    empty = in_process(data, "audit", "verify", "--against", str(junk))
    assert empty.exit_code == 2
    assert "holds no checkpoint records" in empty.stderr
    line = {"type": "bastion.audit.checkpoint", "v": 1, "seq": 1, "hash": "a" * 64,
            "at": "2026-12-01T10:00:00Z", "kid": "k", "signature": "c2ln"}  # fmt: skip
    two = tmp_path / "two.jsonl"
    two.write_text(
        json.dumps({**line, "chain": "1" * 64}) + "\n" + json.dumps({**line, "chain": "2" * 64})
    )
    mixed = in_process(data, "audit", "verify", "--against", str(two))
    assert mixed.exit_code == 2
    assert "checkpoints of 2 chains" in mixed.stderr
    bad_gap = in_process(data, "audit", "verify", "--max-gap", "soon")
    assert bad_gap.exit_code == 2
    assert all(r.exception is None or isinstance(r.exception, SystemExit)
               for r in (missing, empty, mixed, bad_gap))  # fmt: skip
