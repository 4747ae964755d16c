"""The parts on their own: request ids, log formatters, tallies, the workers' shared folder."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from bastion import requestid
from bastion.audit import AuditEvent
from bastion.errors import ConfigurationError
from bastion.logs import JsonFormatter, TextFormatter
from bastion.metrics import LATENCY_BUCKETS, Tally, gathered, merged, prepare
from bastion.metrics.catalog import LOGINS
from bastion.metrics.shared import Publisher
from bastion.metrics.tally import RULES


@pytest.mark.parametrize(
    "raw",
    ["a", "4bf92f3577b34da6a3ce929d0e0e4736", "0f8fad5b-d9cb-469f-a165-70867728950e", "x" * 64],
)
def test_short_safe_request_ids_are_taken(raw: str) -> None:
    assert requestid.parse(raw.encode()) == raw


@pytest.mark.parametrize(
    "raw", [b"", b"x" * 65, b"a\r\nX-Injected: 1", b"a b", b"a\x00", b"\xff\xfe", b"_a", b"a/b"]
)
def test_anything_else_is_refused(raw: bytes) -> None:
    assert requestid.parse(raw) is None


def test_an_audit_event_built_during_a_request_carries_its_id_unless_given() -> None:
    bound = requestid.bind("req-1")
    try:
        event = AuditEvent("session.logout", "success", "usr_1", "tnt_1")
        explicit = AuditEvent(
            "session.logout", "success", "usr_1", "tnt_1", details={"request_id": "x"}
        )
    finally:
        requestid.unbind(bound)
    outside = AuditEvent("session.logout", "success", "usr_1", "tnt_1")
    assert event.details == {"request_id": "req-1"}
    assert explicit.details == {"request_id": "x"}
    assert outside.details == MappingProxyType({})


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("bastion.test", logging.WARNING, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


def test_json_lines_hold_the_request_id_and_only_named_fields() -> None:
    bound = requestid.bind("req-77")
    try:
        line = JsonFormatter().format(
            record(
                "a \x1b[31m\n line", status=404, route="/x", password="hunter2", color_message="c"
            )
        )
    finally:
        requestid.unbind(bound)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["request_id"] == "req-77"
    assert parsed["message"] == "a \x1b[31m\n line"
    assert parsed["status"] == 404
    assert parsed["route"] == "/x"
    assert parsed["level"] == "warning"
    assert parsed["logger"] == "bastion.test"
    assert parsed["time"].endswith("Z")
    assert parsed["pid"] == os.getpid()
    assert "password" not in parsed
    assert "color_message" not in parsed


def test_json_lines_carry_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("failed", exc_info=sys.exc_info())
    failed.exc_info = failed.__dict__["exc_info"]
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exception"]


def test_text_lines_name_the_request_when_there_is_one() -> None:
    assert " bastion.test: plain" in TextFormatter().format(record("plain"))
    bound = requestid.bind("req-9")
    try:
        assert " bastion.test [req-9]: inside" in TextFormatter().format(record("inside"))
    finally:
        requestid.unbind(bound)


def test_latencies_land_in_the_first_bucket_whose_bound_they_do_not_exceed() -> None:
    tally = Tally()
    for seconds in (LATENCY_BUCKETS[0], LATENCY_BUCKETS[0] * 1.01, 999.0):
        tally.observe_request("GET", "/healthz", 200, seconds)
    [[_, _, _, counts]] = tally.snapshot()["requests"]
    assert counts[0] == 3
    assert counts[2] == 1
    assert counts[3] == 1
    assert counts[-1] == 1
    assert sum(counts[2:]) == 3


def test_snapshots_of_several_workers_add_up() -> None:
    first, second = Tally(), Tally()
    first.observe_request("GET", "/healthz", 200, 0.001)
    second.observe_request("GET", "/healthz", 200, 0.002)
    second.observe_request("GET", "/readyz", 503, 0.002)
    first.count(LOGINS, ("success",))
    second.count(LOGINS, ("success",), 2)
    total = merged([first.snapshot(), second.snapshot()])
    requests = {(m, r, s): tally for m, r, s, tally in total["requests"]}
    assert requests[("GET", "/healthz", 200)][0] == 2
    assert requests[("GET", "/readyz", 503)][0] == 1
    assert total["counters"] == [["bastion_logins_total", ["success"], 3]]


def test_a_counter_refuses_the_wrong_labels() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        Tally().count(LOGINS, ())


def test_throttled_sign_ins_count_every_refused_attempt() -> None:
    event = AuditEvent(
        "login.failure", "denied", None, None, reason="rate_limited",
        details={"scope": "address", "ip": "203.0.113.1", "attempts": 7},
    )  # fmt: skip
    counts = {(spec.name, labels): amount for spec, labels, amount in RULES[event.action](event)}
    assert counts == {
        ("bastion_logins_total", ("throttled",)): 7,
        ("bastion_throttled_attempts_total", ("address",)): 7,
    }


def test_the_shared_folder_is_ours_and_emptied_at_start(tmp_path: Path) -> None:
    folder = prepare(tmp_path)
    assert folder.stat().st_mode & 0o777 == 0o700
    (folder / "worker-123.json").write_text("{}")
    (folder / ".worker-123.json.tmp").write_text("")
    (folder / "notes.txt").write_text("kept")
    assert prepare(tmp_path) == folder
    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt"]


def test_a_symlink_in_place_of_the_shared_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "metrics").symlink_to(elsewhere)
    with pytest.raises(ConfigurationError, match="must be a folder"):
        prepare(tmp_path / "data")


def test_a_scrape_adds_the_other_workers_files_and_skips_broken_ones(tmp_path: Path) -> None:
    folder = prepare(tmp_path)
    other, own = Tally(), Tally()
    other.count(LOGINS, ("failure",), 4)
    own.count(LOGINS, ("failure",), 1)
    publisher = Publisher(folder, other, pid=111)
    publisher.publish()
    assert publisher.path.stat().st_mode & 0o777 == 0o600
    Publisher(folder, own, pid=222).publish()  # this process's own file: read live instead
    (folder / "worker-333.json").write_text("not json")
    (folder / "worker-444.json").write_text('{"counters": [["x"]]}')
    snapshots, workers = gathered(folder, own.snapshot(), pid=222)
    assert workers == 2
    assert merged(snapshots)["counters"] == [["bastion_logins_total", ["failure"], 5]]


def test_a_worker_that_cannot_write_its_counters_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = Publisher(tmp_path / "never-created", Tally(), pid=555)
    with caplog.at_level(logging.WARNING, logger="bastion.metrics"):
        publisher.try_publish()
        publisher.tally.count(LOGINS, ("success",))
        publisher.try_publish()
    assert caplog.text.count("cannot write worker metrics") == 1
