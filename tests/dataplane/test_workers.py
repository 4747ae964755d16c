"""``bastion serve --workers 2``: one port, two processes, one truth.

Every request here goes over a fresh connection, which the kernel hands to either
worker (``SO_REUSEPORT``), so a read lands on the worker that did not take the write
about half the time; over 60 round trips both workers answer (2^-60 otherwise).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.server import LiveServer, start_server, worker_pids

DIM = 16
WORKERS = {"BASTION_WORKERS": "2"}


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("workers") / "data", env=WORKERS)
    try:
        yield LiveServer(server)
    finally:
        server.stop()


def call(live: LiveServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request over a new connection (so the kernel picks a worker afresh)."""
    headers = {"Authorization": f"Bearer {live.token(role='developer', acr='aal2')}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=30) as client:
        return client.request(method, path, **kwargs)  # type: ignore[arg-type]


def test_the_server_runs_two_workers(two: LiveServer) -> None:
    assert two.server.process is not None
    assert len(worker_pids(two.server.process.pid)) == 2


def test_every_acknowledged_write_is_seen_by_the_next_request_wherever_it_lands(
    two: LiveServer,
) -> None:
    created = call(
        two, "PUT", "/collections/docs", json={"vectors": {"size": DIM, "distance": "Cosine"}}
    )
    assert created.status_code == 200, created.text
    rng = np.random.default_rng(3)
    for i in range(20):
        vector = rng.normal(size=DIM).tolist()
        written = call(
            two,
            "PUT",
            "/collections/docs/points?wait=true",
            json={"points": [{"id": i, "vector": vector, "payload": {"i": i}}]},
        )
        assert written.status_code == 200, written.text
        found = call(
            two, "POST", "/collections/docs/points/query", json={"query": vector, "limit": 1}
        )
        assert found.json()["result"]["points"][0]["id"] == i
        counted = call(two, "POST", "/collections/docs/points/count", json={"exact": True})
        assert counted.json()["result"]["count"] == i + 1
    removed = call(two, "POST", "/collections/docs/points/delete?wait=true", json={"points": [7]})
    assert removed.status_code == 200, removed.text
    for _ in range(10):
        got = call(two, "POST", "/collections/docs/points", json={"ids": [7, 8]})
        assert [point["id"] for point in got.json()["result"]] == [8]
    assert call(two, "DELETE", "/collections/docs").status_code == 200
    for _ in range(10):
        assert call(two, "GET", "/collections/docs/exists").json()["result"]["exists"] is False


def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", env=WORKERS)
    try:
        assert server.process is not None
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2
        server.kill()  # SIGKILL: the parent cannot pass anything on
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    return state != "Z"
