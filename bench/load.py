"""HTTP load from this process: ``clients`` threads, each with its own keep-alive connection.

The bench client runs on the same machine as the server and competes with it for the
2 cores; so every run also records the client's, the server's and everybody else's CPU
time, which says how the machine was shared. The client is ``bench.wire``: requests
encoded once up front, sent over one keep-alive socket per client, answers framed by
``content-length`` (like ``wrk``). It costs ~50 µs of CPU per request where
``http.client`` costs ~250 and httpx ~670: every µs the client spends is a µs the
server cannot use.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from bench.servers import TICKS, cpu_seconds
from bench.wire import Connection, encode_request

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
    machine_cpu: float  # seconds of CPU every process on the machine used during the run
    steal: float  # seconds the hypervisor gave this machine's CPUs to someone else
    bodies: tuple[bytes, ...]  # in call order, when kept
    # (p50, p99) in ms when the client reports percentiles instead of every latency (wrk)
    percentiles_ms: tuple[float, float] | None = None

    @property
    def rps(self) -> float:
        return self.count / self.wall

    @property
    def p50_ms(self) -> float:
        if not self.latencies and self.percentiles_ms:
            return self.percentiles_ms[0]
        return statistics.median(self.latencies) * 1e3

    @property
    def p99_ms(self) -> float:
        if not self.latencies and self.percentiles_ms:
            return self.percentiles_ms[1]
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3

    @property
    def server_us_per_call(self) -> float:
        return self.server_cpu / self.count * 1e6

    @property
    def client_us_per_call(self) -> float:
        return self.client_cpu / self.count * 1e6

    @property
    def other_cores(self) -> float:
        """Average cores busy with other work (not this client, not the server)."""
        return max(0.0, self.machine_cpu - self.client_cpu - self.server_cpu) / self.wall

    @property
    def steal_cores(self) -> float:
        return self.steal / self.wall


def machine_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot (/proc/stat, all cores)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS


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
    sent = {**JSON, **(headers or {})}
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    authority = f"{host}:{parts.port}"
    encoded = [
        encode_request(call.method, call.path, host=authority, headers=sent, body=call.body)
        for call in calls
    ]
    sessions = [Connection(host, parts.port or 80) for _ in range(clients)]
    health = encode_request("GET", "/healthz", host=authority, headers={}, body=None)
    for session in sessions:  # open the keep-alive connection before the clock starts
        session.exchange(health)

    def worker(session: Connection, share: list[int]) -> None:
        barrier.wait()
        for index in share:
            started = time.perf_counter()
            status, content = session.exchange(encoded[index])
            latencies[index] = time.perf_counter() - started
            if status != 200:
                call = calls[index]
                errors.append(f"{call.method} {call.path}: {status} {content[:300]!r}")
                return
            if keep_bodies:
                bodies[index] = content

    threads = [
        threading.Thread(target=worker, args=(session, share), daemon=True)
        for session, share in zip(sessions, shares, strict=True)
    ]
    for thread in threads:
        thread.start()
    server_before = cpu_seconds(server_pid)
    client_before = time.process_time()
    machine_before, steal_before = machine_seconds()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    server_cpu = cpu_seconds(server_pid) - server_before
    machine_after, steal_after = machine_seconds()
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
        machine_cpu=machine_after - machine_before,
        steal=steal_after - steal_before,
        bodies=tuple(bodies),
    )


def combine(runs: Sequence[LoadResult]) -> LoadResult:
    """Many runs as one: counts, times and CPU added up, bodies in run order; from
    percentiles only (wrk), p50 is the median of the runs' p50s and p99 the worst p99."""
    percentiles = None
    if any(run.percentiles_ms for run in runs):
        percentiles = (
            statistics.median(run.p50_ms for run in runs),
            max(run.p99_ms for run in runs),
        )
    return LoadResult(
        count=sum(run.count for run in runs),
        clients=runs[0].clients,
        wall=sum(run.wall for run in runs),
        latencies=tuple(latency for run in runs for latency in run.latencies),
        client_cpu=sum(run.client_cpu for run in runs),
        server_cpu=sum(run.server_cpu for run in runs),
        machine_cpu=sum(run.machine_cpu for run in runs),
        steal=sum(run.steal for run in runs),
        bodies=tuple(body for run in runs for body in run.bodies),
        percentiles_ms=percentiles,
    )


def paired_ratio(runs: Sequence[LoadResult], baseline: Sequence[LoadResult]) -> float:
    """Median over paired runs (same block, back to back) of the throughput ratio."""
    return statistics.median(run.rps / base.rps for run, base in zip(runs, baseline, strict=True))


@dataclass(frozen=True)
class Variant:
    """One server configuration under test: where it is and what the client sends."""

    label: str
    url: str
    pid: int
    headers: dict[str, str]


Baseline = Callable[[int, int], float]  # (start, end) of the calls -> calls per second


class Runner(Protocol):
    """Sends calls and measures them: ``run_load`` (bench.wire) or ``bench.wrk.run_wrk``."""

    def __call__(
        self,
        url: str,
        calls: Sequence[Call],
        *,
        clients: int,
        server_pid: int,
        headers: dict[str, str] | None = None,
        keep_bodies: bool = False,
    ) -> LoadResult: ...


@dataclass(frozen=True)
class Interleaved:
    runs: dict[str, list[LoadResult]]  # per variant label, block by block
    baseline: list[float]  # per block: the in-process baseline's calls per second


def interleave(
    variants: Sequence[Variant],
    calls: Sequence[Call],
    *,
    clients: int,
    rounds: int,
    block: int,
    warmup: int = 200,
    baseline: Baseline | None = None,
    runner: Runner = run_load,
) -> Interleaved:
    """Every call ``rounds`` times per variant, in blocks of ``block`` calls, variants
    back to back for each block (rotating who goes first): slow drift of the machine
    hits every variant alike, and block *i* of one variant pairs with block *i* of the
    others. ``baseline`` (the same calls done in-process, without HTTP) runs right after
    the variants of each block. Bodies are asked for in the first round (``run_load``
    keeps them, ``bench.wrk.run_wrk`` has none)."""
    for variant in variants:
        runner(
            variant.url,
            calls[:warmup],
            clients=clients,
            server_pid=variant.pid,
            headers=variant.headers,
        )
    runs: dict[str, list[LoadResult]] = {variant.label: [] for variant in variants}
    baseline_rates: list[float] = []
    turn = 0
    for round_ in range(rounds):
        for start in range(0, len(calls), block):
            chunk = calls[start : start + block]
            turn += 1
            shift = turn % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:
                runs[variant.label].append(
                    runner(
                        variant.url,
                        chunk,
                        clients=clients,
                        server_pid=variant.pid,
                        headers=variant.headers,
                        keep_bodies=round_ == 0,
                    )
                )
            if baseline is not None:
                baseline_rates.append(baseline(start, start + len(chunk)))
    return Interleaved(runs, baseline_rates)
