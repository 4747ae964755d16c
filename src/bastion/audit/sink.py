"""Checkpoint sinks: every signed checkpoint also leaves the data folder.

``BASTION_AUDIT_CHECKPOINT_SINK`` names one or more places (``config.CheckpointSink``):

- ``file:///var/log/bastion-checkpoints.jsonl`` — one JSON line appended per checkpoint
  (``O_APPEND``, an exclusive ``flock`` so worker processes never interleave, ``fsync``);
  make the file append-only for Bastion's user (``chattr +a``) or ship it elsewhere;
- ``syslog://host:514`` (UDP) or ``syslog:///dev/log`` — stdlib ``SysLogHandler``,
  facility ``authpriv`` unless ``?facility=…``; UDP is fire-and-forget: a receiver that
  is down is not noticed here, so prefer a local socket or HTTP where delivery matters;
- ``https://collector.example/…`` — a JSON POST (``Authorization`` from
  ``BASTION_AUDIT_CHECKPOINT_HTTP_AUTHORIZATION``), any 2xx is delivered; redirects are
  not followed.

A sink that fails never blocks serving and never loses a checkpoint silently: the
failure is logged as an error (logger ``bastion.audit``), counted, and the checkpoint
waits (up to ``MAX_PENDING``, oldest dropped with an error) to be sent again, in order,
at the next checkpoint run. Every attempt is bounded by ``SINK_TIMEOUT_SECONDS`` (the HTTP
timeout, the syslog socket's, the wait for the file's lock).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import Any, Protocol

from bastion import __version__
from bastion.config import CheckpointSink, Settings

log = logging.getLogger("bastion.audit")
SINK_TIMEOUT_SECONDS = 5.0
MAX_PENDING = 1000  # about three days of five-minute checkpoints
SYSLOG_IDENT = "bastion-audit: "


class Sink(Protocol):
    display: str  # for log lines: no query, no credentials

    def deliver(self, line: str) -> None:
        """Send one record; raise on any failure."""


class SinkFailure(Exception):
    """A sink answered, but not with success (an HTTP status outside 2xx)."""


# -- the sinks ------------------------------------------------------------------------


class FileSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = f"file://{path}"

    def deliver(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            _lock(fd)  # worker processes append one whole line at a time
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # an earlier write was cut short (disk full): new line
            if os.write(fd, data) != len(data):
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)


def _lock(fd: int) -> None:
    """An exclusive ``flock``, waiting at most ``SINK_TIMEOUT_SECONDS`` (whoever else holds
    it must not stall the server's housekeeping)."""
    deadline = time.monotonic() + SINK_TIMEOUT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError("the file stayed locked by another process") from None
            time.sleep(0.05)


class _RaisingSysLogHandler(SysLogHandler):
    """``SysLogHandler`` swallows send errors (``handleError``); a sink must see them."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # the exception ``emit`` is handling


class SyslogSink:
    def __init__(self, spec: CheckpointSink) -> None:
        self.address: str | tuple[str, int] = (
            str(spec.path) if spec.path is not None else (spec.host or "", spec.port or 514)
        )
        self.facility = SysLogHandler.facility_names[spec.facility]
        self.display = spec.display

    def deliver(self, line: str) -> None:
        # A fresh socket each time: one send every few minutes, nothing held open between.
        socktype = None if isinstance(self.address, str) else socket.SOCK_DGRAM
        handler = _RaisingSysLogHandler(self.address, self.facility, socktype)
        try:
            sock = getattr(handler, "socket", None)  # not in typeshed's SysLogHandler
            if isinstance(sock, socket.socket) and sock.fileno() != -1:
                sock.settimeout(SINK_TIMEOUT_SECONDS)  # a stuck daemon is a failure
            handler.ident = SYSLOG_IDENT
            record = logging.LogRecord(
                "bastion.audit.checkpoint", logging.INFO, __file__, 0, line, None, None
            )
            handler.emit(record)
        finally:
            handler.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then fails as an HTTPError: a sink must answer itself


class HttpSink:
    def __init__(self, spec: CheckpointSink, *, authorization: str | None) -> None:
        self.url = spec.url
        self.display = spec.display
        self._authorization = authorization
        self._opener = urllib.request.build_opener(_NoRedirect())

    def deliver(self, line: str) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": f"bastion/{__version__}"}
        if self._authorization:
            headers["Authorization"] = self._authorization
        request = urllib.request.Request(  # noqa: S310  (config allows only http(s) here)
            self.url, data=line.encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=SINK_TIMEOUT_SECONDS) as response:
                response.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SinkFailure(f"HTTP {exc.code}") from None


def build_sinks(settings: Settings) -> tuple[Sink, ...]:
    """The sinks ``BASTION_AUDIT_CHECKPOINT_SINK`` names (already validated by config)."""
    secret = settings.audit_checkpoint_http_authorization
    authorization = None if secret is None else secret.get_secret_value()
    sinks: list[Sink] = []
    for spec in settings.checkpoint_sinks:
        if spec.scheme == "file" and spec.path is not None:
            sinks.append(FileSink(spec.path))
        elif spec.scheme == "syslog":
            sinks.append(SyslogSink(spec))
        else:
            sinks.append(HttpSink(spec, authorization=authorization))
    return tuple(sinks)


# -- delivery with retries --------------------------------------------------------------


@dataclass(frozen=True)
class SinkStatus:
    sink: str
    delivered: int  # checkpoints delivered since start
    failures: int  # failed attempts since start
    failing_since: int  # failed attempts in a row (0: the last attempt worked)
    waiting: int  # checkpoints not delivered yet
    dropped: int  # checkpoints given up on (more than MAX_PENDING waiting)
    last_error: str | None


@dataclass
class _State:
    sink: Sink
    waiting: deque[tuple[int, str]] = field(default_factory=deque)
    delivered: int = 0
    failures: int = 0
    failing_since: int = 0
    dropped: int = 0
    last_error: str | None = None

    def status(self) -> SinkStatus:
        return SinkStatus(
            self.sink.display, self.delivered, self.failures, self.failing_since,
            len(self.waiting), self.dropped, self.last_error,
        )  # fmt: skip


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason (the Authorization header is never part of one)."""
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        return "cannot reach it: " + (
            _reason(inner) if isinstance(inner, BaseException) else str(inner)
        )
    if isinstance(exc, TimeoutError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    if isinstance(exc, TimeoutError):
        return f"no answer within {SINK_TIMEOUT_SECONDS:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class CheckpointExporter:
    """Sends each checkpoint record to every sink, keeping each sink's undelivered ones."""

    def __init__(self, sinks: Sequence[Sink], *, max_pending: int = MAX_PENDING) -> None:
        self._states = [_State(sink) for sink in sinks]
        self._max_pending = max_pending
        self._lock = threading.Lock()

    @property
    def sinks(self) -> tuple[Sink, ...]:
        return tuple(state.sink for state in self._states)

    def export(self, seq: int | None, line: str | None) -> None:
        """Queue ``line`` (the record of checkpoint ``seq``; None: nothing new) for every
        sink, then send each sink what waits for it, oldest first. Never raises."""
        with self._lock:
            for state in self._states:
                if seq is not None and line is not None:
                    self._queue(state, seq, line)
                self._send(state)

    def status(self) -> tuple[SinkStatus, ...]:
        with self._lock:
            return tuple(state.status() for state in self._states)

    def _queue(self, state: _State, seq: int, line: str) -> None:
        state.waiting.append((seq, line))
        if len(state.waiting) > self._max_pending:
            lost, _ = state.waiting.popleft()
            state.dropped += 1
            log.error(
                "audit checkpoint sink %s: gave up on the checkpoint at seq %d "
                "(%d waiting); the export now has a gap",
                state.sink.display, lost, self._max_pending,
            )  # fmt: skip

    def _send(self, state: _State) -> None:
        while state.waiting:
            seq, line = state.waiting[0]
            try:
                state.sink.deliver(line)
            except Exception as exc:  # any failure of any sink: counted, logged, retried
                state.failures += 1
                state.failing_since += 1
                state.last_error = _reason(exc)
                log.error(
                    "audit checkpoint sink %s failed: %s; %d checkpoint(s) waiting (oldest "
                    "seq %d), %d failure(s) in a row, %d in total; retried at the next "
                    "checkpoint",
                    state.sink.display, state.last_error, len(state.waiting), seq,
                    state.failing_since, state.failures,
                )  # fmt: skip
                return
            state.waiting.popleft()
            state.delivered += 1
            if state.failing_since:
                log.warning(
                    "audit checkpoint sink %s delivers again after %d failure(s)",
                    state.sink.display, state.failing_since,
                )  # fmt: skip
                state.failing_since = 0
