"""HTTP load from this process: ``clients`` threads, each with its own keep-alive httpx client.

The bench client runs on the same machine as the server and competes with it for the
CPU; so every run also records the client's and the server's CPU time, which says how
much of the machine each side used.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from bench.servers import cpu_seconds

JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes | None = None


@dataclass(frozen=True)
class LoadResult:
    count: int
    clients: int
    wall: float
    latencies: tuple[float, ...]
    client_cpu: float  # seconds of CPU this (client) process used during the run
    server_cpu: float  # seconds of CPU the server process used during the run
    bodies: tuple[bytes, ...]  # in call order, when kept

    @property
    def rps(self) -> float:
        return self.count / self.wall

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1e3

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3

    @property
    def server_us_per_call(self) -> float:
        return self.server_cpu / self.count * 1e6

    @property
    def client_us_per_call(self) -> float:
        return self.client_cpu / self.count * 1e6


def run_load(
    url: str,
    calls: Sequence[Call],
    *,
    clients: int,
    server_pid: int,
    headers: dict[str, str] | None = None,
    keep_bodies: bool = False,
) -> LoadResult:
    """Send every call once, spread round-robin over ``clients`` threads; all must answer 200."""
    shares = [list(range(start, len(calls), clients)) for start in range(clients)]
    latencies: list[float] = [0.0] * len(calls)
    bodies: list[bytes] = [b""] * len(calls) if keep_bodies else []
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)
    sessions = [
        httpx.Client(base_url=url, headers={**JSON, **(headers or {})}, timeout=120)
        for _ in range(clients)
    ]
    for session in sessions:  # open the keep-alive connection before the clock starts
        session.get("/healthz").raise_for_status()

    def worker(session: httpx.Client, share: list[int]) -> None:
        barrier.wait()
        for index in share:
            call = calls[index]
            started = time.perf_counter()
            response = session.request(call.method, call.path, content=call.body)
            latencies[index] = time.perf_counter() - started
            if response.status_code != 200:
                errors.append(f"{call.method} {call.path}: {response.status_code} {response.text}")
                return
            if keep_bodies:
                bodies[index] = response.content

    threads = [
        threading.Thread(target=worker, args=(session, share), daemon=True)
        for session, share in zip(sessions, shares, strict=True)
    ]
    for thread in threads:
        thread.start()
    server_before = cpu_seconds(server_pid)
    client_before = time.process_time()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    server_cpu = cpu_seconds(server_pid) - server_before
    for session in sessions:
        session.close()
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed; first: {errors[0][:500]}")
    return LoadResult(
        count=len(calls),
        clients=clients,
        wall=wall,
        latencies=tuple(latencies),
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        bodies=tuple(bodies),
    )


def median_run(runs: Sequence[LoadResult]) -> LoadResult:
    """The run with the median throughput (odd number of runs: the middle one)."""
    return sorted(runs, key=lambda run: run.rps)[len(runs) // 2]
