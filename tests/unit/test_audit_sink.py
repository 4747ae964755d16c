"""Checkpoint sinks against real receivers on loopback: a file, a syslog socket (UDP and
a local datagram socket), an HTTP server; delivery failures logged, counted, retried."""

from __future__ import annotations

import fcntl
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.support.server import ADMIN_PASSWORD

from bastion.app import checkpoint_audit, create_app
from bastion.audit import (
    Checkpoint,
    CheckpointExporter,
    export_record,
    latest_checkpoint,
    read_anchors,
)
from bastion.audit import sink as sink_module
from bastion.audit.sink import FileSink, HttpSink, SinkFailure, SyslogSink, build_sinks
from bastion.clock import ManualClock
from bastion.config import load_settings, parse_checkpoint_sink
from bastion.errors import ConfigurationError

T0 = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
CHAIN = "c" * 64
TOKEN = "Bearer sink-secret-7f3a"


def record(seq: int) -> str:
    return export_record(Checkpoint(seq, f"{seq:064x}", T0, "kid-1", b"s" * 64), chain=CHAIN)


# -- receivers -------------------------------------------------------------------------


@dataclass
class Collector:
    """A small HTTP receiver: records each POST, answers ``status`` (and ``location``)."""

    status: int = 204
    location: str | None = None
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def collector() -> Iterator[Collector]:
    state = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append((dict(self.headers.items()), body))
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/checkpoints"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


def http_sink(url: str, authorization: str | None = TOKEN) -> HttpSink:
    return HttpSink(parse_checkpoint_sink(url), authorization=authorization)


# -- file --------------------------------------------------------------------------------


def test_file_sink_appends_one_json_line_per_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "log" / "checkpoints.jsonl"
    path.parent.mkdir()
    sink = FileSink(path)
    sink.deliver(record(1))
    sink.deliver(record(2))
    assert path.read_text() == record(1) + "\n" + record(2) + "\n"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    anchors = read_anchors(path.read_text())
    assert [e.seq for e in anchors.checkpoints] == [1, 2]
    assert anchors.chain == CHAIN


def test_file_sink_starts_a_new_line_after_a_write_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    path.write_text(record(1) + "\n" + record(2)[:40])  # the disk filled up mid-line
    FileSink(path).deliver(record(3))
    lines = path.read_text().splitlines()
    assert lines[-1] == record(3)
    anchors = read_anchors(path.read_text())
    assert [e.seq for e in anchors.checkpoints] == [1, 3]
    assert anchors.unreadable == 1
    assert "line 2" in anchors.notes[0]


def test_file_sink_that_cannot_be_written_raises(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.jsonl").mkdir()
    with pytest.raises(IsADirectoryError):
        FileSink(tmp_path / "checkpoints.jsonl").deliver(record(1))


def test_file_sink_locked_by_someone_else_fails_instead_of_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink_module, "SINK_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "checkpoints.jsonl"
    with path.open("a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # e.g. another user who can read the file
        exporter = CheckpointExporter([FileSink(path)])
        exporter.export(1, record(1))
    [status] = exporter.status()
    assert (status.waiting, status.last_error) == (1, "the file stayed locked by another process")
    exporter.export(None, None)  # the lock is gone: delivered at the next run
    assert path.read_text() == record(1) + "\n"


# -- syslog ------------------------------------------------------------------------------


def test_syslog_sink_sends_to_a_udp_receiver(udp_receiver: socket.socket) -> None:
    port = udp_receiver.getsockname()[1]
    sink = SyslogSink(parse_checkpoint_sink(f"syslog://127.0.0.1:{port}?facility=local0"))
    sink.deliver(record(7))
    message = udp_receiver.recv(65536).decode("utf-8").rstrip("\0")
    assert message.startswith("<134>bastion-audit: {")  # local0 (16) * 8 + info (6)
    assert message.endswith(record(7))
    assert [e.seq for e in read_anchors(f"Dec  1 10:05:00 host {message}\n").checkpoints] == [7]


def test_syslog_sink_default_facility_is_authpriv(udp_receiver: socket.socket) -> None:
    port = udp_receiver.getsockname()[1]
    SyslogSink(parse_checkpoint_sink(f"syslog://127.0.0.1:{port}")).deliver(record(1))
    assert udp_receiver.recv(65536).startswith(b"<86>")  # authpriv (10) * 8 + info (6)


def test_syslog_sink_to_a_local_socket(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(5)
        SyslogSink(parse_checkpoint_sink(f"syslog://{path}")).deliver(record(3))
        assert receiver.recv(65536).decode().rstrip("\0").endswith(record(3))
    path.unlink()
    with pytest.raises(FileNotFoundError):  # nobody listens any more: the sink sees it
        SyslogSink(parse_checkpoint_sink(f"syslog://{path}")).deliver(record(4))


# -- HTTP --------------------------------------------------------------------------------


def test_http_sink_posts_the_record_with_the_configured_authorization(
    collector: Collector,
) -> None:
    http_sink(collector.url).deliver(record(5))
    [(headers, body)] = collector.received
    assert body.decode() == record(5)
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == TOKEN
    assert headers["User-Agent"].startswith("bastion/")


@pytest.mark.parametrize("status", [500, 404, 401])
def test_http_sink_error_status_is_a_failure(collector: Collector, status: int) -> None:
    collector.status = status
    with pytest.raises(SinkFailure, match=f"HTTP {status}"):
        http_sink(collector.url).deliver(record(1))


def test_http_sink_does_not_follow_redirects(collector: Collector) -> None:
    collector.status, collector.location = 307, "http://127.0.0.1:9/elsewhere"
    with pytest.raises(SinkFailure, match="HTTP 307"):
        http_sink(collector.url).deliver(record(1))
    assert len(collector.received) == 1


# -- delivery: failures logged, counted, retried -----------------------------------------


def test_failed_delivery_is_logged_counted_and_retried_in_order(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = CheckpointExporter([http_sink(collector.url)])
    collector.status = 503
    with caplog.at_level(logging.WARNING, logger="bastion.audit"):
        exporter.export(1, record(1))
        exporter.export(2, record(2))
        exporter.export(None, None)  # a run with nothing new still retries
    [status] = exporter.status()
    assert (status.delivered, status.failures, status.failing_since, status.waiting) == (0, 3, 3, 2)
    assert status.last_error == "HTTP 503"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert "audit checkpoint sink http://127.0.0.1" in errors[-1].getMessage()
    assert (
        "2 checkpoint(s) waiting (oldest seq 1), 3 failure(s) in a row" in errors[-1].getMessage()
    )

    collector.status = 200
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bastion.audit"):
        exporter.export(3, record(3))
    assert [body.decode() for _, body in collector.received[-3:]] == [
        record(1),
        record(2),
        record(3),
    ]
    [status] = exporter.status()
    assert (status.delivered, status.failing_since, status.waiting) == (3, 0, 0)
    assert "delivers again after 3 failure(s)" in caplog.text
    assert "sink-secret" not in caplog.text


def test_one_failing_sink_does_not_hold_back_the_others(
    collector: Collector, tmp_path: Path
) -> None:
    (tmp_path / "broken.jsonl").mkdir()
    exporter = CheckpointExporter([FileSink(tmp_path / "broken.jsonl"), http_sink(collector.url)])
    exporter.export(1, record(1))
    broken, working = exporter.status()
    assert (broken.failures, broken.waiting, working.delivered) == (1, 1, 1)


def test_waiting_checkpoints_are_bounded_and_a_drop_is_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "broken.jsonl").mkdir()
    exporter = CheckpointExporter([FileSink(tmp_path / "broken.jsonl")], max_pending=2)
    with caplog.at_level(logging.ERROR, logger="bastion.audit"):
        for seq in (1, 2, 3):
            exporter.export(seq, record(seq))
    [status] = exporter.status()
    assert (status.waiting, status.dropped) == (2, 1)
    assert "gave up on the checkpoint at seq 1" in caplog.text


def test_unreachable_http_sink_fails_fast_and_quietly(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = CheckpointExporter([http_sink(f"http://127.0.0.1:{port}/x")])
    with caplog.at_level(logging.ERROR, logger="bastion.audit"):
        exporter.export(1, record(1))  # never raises
    [status] = exporter.status()
    assert status.last_error is not None
    assert status.last_error.startswith("cannot reach it")


# -- configuration -------------------------------------------------------------------------


def test_sinks_are_built_from_the_setting(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        audit_checkpoint_sink=(
            f"file://{tmp_path / 'out.jsonl'}, syslog://127.0.0.1:5514?facility=local3,"
            "https://collector.example/bastion?token=q"
        ),
        audit_checkpoint_http_authorization=TOKEN,
    )
    sinks = build_sinks(settings)
    assert [type(s).__name__ for s in sinks] == ["FileSink", "SyslogSink", "HttpSink"]
    assert sinks[2].display == "https://collector.example/bastion"  # no query in logs
    assert TOKEN not in repr(settings)


def test_toml_list_of_sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[bastion]\naudit_checkpoint_sink = ["file://{tmp_path}/a.jsonl", "syslog:///dev/log"]\n'
    )
    monkeypatch.setenv("BASTION_CONFIG", str(config))
    settings = load_settings(data_dir=tmp_path / "data")
    assert [s.scheme for s in settings.checkpoint_sinks] == ["file", "syslog"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("file://{data}/checkpoints.jsonl", "inside"),
        ("file://{data}/../data/sub/x.jsonl", "inside"),
        ("file://relative/x.jsonl", "absolute path"),
        ("ftp://example.com/x", "use file:///"),
        ("https://user:pw@collector.example/x", "no credentials in the URL"),
        ("https:///nohost", "needs a host"),
        ("syslog://127.0.0.1:514?facility=nope", "unknown syslog facility"),
        ("https://collector.example:99999/x", "not a URL"),
    ],
)
def test_bad_sink_is_a_configuration_error_naming_the_setting(
    tmp_path: Path, value: str, message: str
) -> None:
    data = tmp_path / "data"
    with pytest.raises(ConfigurationError, match="BASTION_AUDIT_CHECKPOINT_SINK") as refused:
        load_settings(data_dir=data, audit_checkpoint_sink=value.format(data=data))
    assert message in refused.value.detail
    assert "pw@" not in refused.value.detail


def test_sink_beside_the_sqlite_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="inside"):
        load_settings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path}/db/bastion.db",
            audit_checkpoint_sink=f"file://{tmp_path}/db/checkpoints.jsonl",
        )


def test_sink_credentials_never_travel_in_clear_text(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="clear text"):
        load_settings(
            data_dir=tmp_path,
            audit_checkpoint_sink="http://collector.example/x",
            audit_checkpoint_http_authorization=TOKEN,
        )
    local = load_settings(  # loopback (a local forwarder) is fine
        data_dir=tmp_path,
        audit_checkpoint_sink="http://127.0.0.1:8088/x",
        audit_checkpoint_http_authorization=TOKEN,
    )
    assert [s.scheme for s in local.checkpoint_sinks] == ["http"]


def test_a_query_token_is_never_echoed_in_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(data_dir=tmp_path, audit_checkpoint_sink="gopher://x/?token=s3cret")
    assert "s3cret" not in refused.value.detail


def test_records_round_trip_through_the_json_line() -> None:
    line = record(9)
    assert json.loads(line)["type"] == "bastion.audit.checkpoint"
    [exported] = read_anchors(line).checkpoints
    assert exported.checkpoint == Checkpoint(9, f"{9:064x}", T0, "kid-1", b"s" * 64)


# -- the server ----------------------------------------------------------------------------


def test_server_keeps_serving_with_a_sink_down_and_exports_at_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "log"
    (outside / "down.jsonl").mkdir(parents=True)  # a sink that cannot be written
    settings = load_settings(
        data_dir=tmp_path / "data",
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
        audit_checkpoint_sink=f"file://{outside}/down.jsonl,file://{outside}/up.jsonl",
    )
    app = create_app(settings, clock=ManualClock(T0))
    with caplog.at_level(logging.ERROR, logger="bastion.audit"), TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        signed_in = client.post(
            "/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert signed_in.status_code == 200
        checkpoint_audit(app.state.runtime)  # what the housekeeping loop runs
        assert client.get("/healthz").status_code == 200
        head = app.state.runtime.checkpointer.exporter.status()
        client.post("/auth/login", json={"username": "admin", "password": "wrong password 1"})
    down, up = head
    assert (down.failures, down.waiting, up.delivered) == (1, 1, 1)
    assert "file://" + str(outside / "down.jsonl") + " failed" in caplog.text
    # at shutdown the server signed the login failure too, and exported it
    exported = read_anchors((outside / "up.jsonl").read_text()).checkpoints
    assert len(exported) == 2
    with app.state.runtime.db.read() as conn:
        assert exported[-1].checkpoint == latest_checkpoint(conn)
