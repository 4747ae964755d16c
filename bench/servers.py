"""Real Bastion servers for the bench, their process figures, and in-process runtimes.

Servers come from ``tests.support.server`` (a uvicorn subprocess on a loopback port).
That helper's defaults are for tests (``BASTION_ARGON2_PROFILE=test``); every bench
server overrides them with the production profile, so a login costs what it costs in
production.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.server import (
    ADMIN_PASSWORD,
    Credentials,
    ServerProcess,
    start_server,
)
from tests.support.server import open_runtime as open_server_runtime

from bastion.runtime import Runtime

__all__ = [
    "ADMIN_PASSWORD",
    "AUTH_OFF",
    "PRODUCTION",
    "TICKS",
    "Credentials",
    "ServerProcess",
    "cpu_seconds",
    "open_runtime",
    "pid_of",
    "rss_bytes",
    "start",
]

PRODUCTION = {"BASTION_ARGON2_PROFILE": "owasp", "BASTION_LOG_LEVEL": "warning"}
AUTH_OFF = {
    "BASTION_AUTH_DISABLED_FOR_BENCHMARKS": "true",
    "BASTION_I_UNDERSTAND_THIS_IS_INSECURE": "1",
}
TICKS = os.sysconf("SC_CLK_TCK")


def start(data_dir: Path, *, auth: bool = True) -> ServerProcess:
    env = dict(PRODUCTION) if auth else {**PRODUCTION, **AUTH_OFF}
    return start_server(data_dir, env=env)


def pid_of(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def open_runtime(server: ServerProcess) -> Runtime:
    """A ``Runtime`` on the server's data folder with the server's settings (same keys)."""
    return open_server_runtime(server.data_dir, server.env)
