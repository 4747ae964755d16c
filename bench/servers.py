"""Real Bastion servers for the bench, their process figures, and in-process runtimes.

Servers come from ``tests.support.server`` (a uvicorn subprocess on a loopback port).
That helper's defaults are for tests (``BASTION_ARGON2_PROFILE=test``); every bench
server overrides them with the production profile, so a login costs what it costs in
production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.support.server import (
    ADMIN_PASSWORD,
    Credentials,
    ServerProcess,
    free_port,
    start_server,
    worker_pids,
)
from tests.support.server import open_runtime as open_server_runtime

from bastion.runtime import Runtime

__all__ = [
    "ADMIN_PASSWORD",
    "PRODUCTION",
    "TICKS",
    "Credentials",
    "ServerProcess",
    "allow_bulk_reads",
    "cpu_seconds",
    "open_runtime",
    "pid_of",
    "rss_bytes",
    "start",
    "start_floor",
]

PRODUCTION = {"BASTION_ARGON2_PROFILE": "owasp", "BASTION_LOG_LEVEL": "warning"}
# Points a minute a principal may read before the door calls it a burst (the maximum).
BULK_QUERY_FLOOR = 10**9
TICKS = os.sysconf("SC_CLK_TCK")


def start(
    data_dir: Path, *, auth: bool = True, workers: int = 1, env: dict[str, str] | None = None
) -> ServerProcess:
    """A server; with several workers, returned once every one of them listens (the
    first answers /healthz while the others may still be loading their collections).
    ``auth=False``: the bench's own app (``bench.app``), where requests without a
    credential skip the door and requests with one go through it. ``env``: more
    settings (a PostgreSQL replica's database URL, master key and public URL)."""
    server = start_server(
        data_dir,
        env={**PRODUCTION, **(env or {}), "BASTION_WORKERS": str(workers)},
        module="bastion" if auth else "bench.serve",
    )
    deadline = time.monotonic() + 300
    while _listeners(server.port) < workers:
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"only {_listeners(server.port)} of {workers} workers listen")
        time.sleep(0.1)
    return server


@dataclass
class FloorServer:
    """``python -m bench.floor``: the serving stack of ``bastion serve`` around an app
    that does nothing (bench/floor.py)."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_floor(log_dir: Path, *, workers: int) -> FloorServer:
    """The floor server with ``workers`` processes, returned once every one listens."""
    port = free_port()
    with (log_dir / f"floor-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.floor", str(port), str(workers)],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = FloorServer(process, port)
    deadline = time.monotonic() + 60
    while _listeners(port) < workers:
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the floor server did not start; see {log_dir}/floor-{port}.log")
        time.sleep(0.05)
    return server


def _listeners(port: int) -> int:
    """Sockets listening on ``port`` (/proc/net/tcp: local address, state 0A)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A"
    )


def pid_of(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


def rss_bytes(pid: int) -> int:
    """Resident set size of one server process: with ``--workers N`` the mean of the
    workers' (each holds its own copy of the collections), ``VmRSS`` in /proc."""
    workers = worker_pids(pid) or [pid]
    return sum(_rss(worker) for worker in workers) // len(workers)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a server: the process, all its threads, and its
    worker processes (``--workers N``)."""
    total = 0.0
    for process in [pid, *worker_pids(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:  # a worker that just ended
            continue
        # After the command name: state is field 3; utime and stime are fields 14 and 15.
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def open_runtime(server: ServerProcess) -> Runtime:
    """A ``Runtime`` on the server's data folder with the server's settings (same keys)."""
    return open_server_runtime(server.data_dir, server.env)


def allow_bulk_reads(server: ServerProcess) -> None:
    """Raise the default tenant's query volume floor (docs/risk.md, "Bulk jobs flagged")
    through ``PUT /admin/policy`` with an admin's token. A bench client reads ~10^5
    points a minute with one token, which the default floor (1,000 a minute, x 10) flags
    as a burst and challenges within a second; the door still runs the check on every
    request, so its cost stays in the figures."""
    admin = Credentials(server.data_dir, server.env).token(role="admin", acr="aal3")
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {admin}"}, timeout=60
    ) as client:
        got = client.get("/admin/policy")
        got.raise_for_status()
        document = got.json()
        document["risk"]["volume"]["floors"]["query"] = BULK_QUERY_FLOOR
        client.put("/admin/policy", json=document).raise_for_status()
