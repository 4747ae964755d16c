"""Several real ``bastion serve`` processes (replicas) on one PostgreSQL database.

Each replica has its own empty data folder, as on separate hosts; they share only the
database URL and the master key, which is all an operator gives them.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.server import ROOT, TEST_ENV, LiveServer, ServerProcess, free_port


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def replica(root: Path, name: str, database_url: str, master_key: str) -> ServerProcess:
    """A replica, not started: its own data folder, the shared database and master key."""
    data_dir = root / name / "data"
    data_dir.mkdir(mode=0o700, parents=True)
    port = free_port()
    env = {
        **TEST_ENV,
        "BASTION_DATABASE_URL": database_url,
        "BASTION_MASTER_KEY": master_key,
        # Behind one load balancer every replica has the same public URL (token `iss`).
        "BASTION_PUBLIC_URL": "http://bastion.test",
        "BASTION_LOG_LEVEL": "info",
    }
    return ServerProcess(data_dir, port, env)


def start_together(servers: list[ServerProcess], timeout: float = 90.0) -> None:
    """Start every server at the same moment, then wait until each answers /healthz."""
    for server in servers:
        with server.log_path.open("ab") as log:
            server.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bastion",
                    "serve",
                    "--data-dir",
                    str(server.data_dir),
                    "--port",
                    str(server.port),
                ],
                env={**os.environ, **server.env},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
    deadline = time.monotonic() + timeout
    for server in servers:
        assert server.process is not None
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"replica exited early:\n{server.log()}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica did not start in {timeout}s:\n{server.log()}")
            time.sleep(0.1)


@contextmanager
def running(servers: list[ServerProcess]) -> Iterator[list[ServerProcess]]:
    try:
        start_together(servers)
        yield servers
    finally:
        for server in servers:
            server.stop()


@dataclass
class Pair:
    """Two replicas on one database (the ``pair`` fixture of ``tests/postgres``)."""

    url: str  # the database
    master_key: str
    a: LiveServer
    b: LiveServer
    root: Path

    def both(self) -> Iterator[LiveServer]:
        """A, B, A, B, …: requests alternate."""
        while True:
            yield self.a
            yield self.b
