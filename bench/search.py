"""HTTP measurements against two live servers on the same data: authentication on and off.

The guard's cost on a cheap request, and recall@10 / QPS of searches with a Bearer
token, an api-key and no authentication, 1 and 8 clients. Variants are interleaved
block by block (``load.interleave``); ratios between variants are the median of the
ratios of paired blocks, which cancels drift of the shared machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from bench import wrk
from bench.data import Dataset, recall_at_k
from bench.load import (
    Baseline,
    Call,
    LoadResult,
    Runner,
    Variant,
    combine,
    interleave,
    paired_ratio,
    run_load,
)
from bench.report import Results, fmt, ratio
from bench.wrk import run_wrk

COLLECTION = "bench"
ROUNDS = 8  # passes over the 1,000 queries per variant
BLOCKS = {1: 100, 8: 500}  # calls per interleaved block, by number of clients
WRK_BLOCK = 500  # with wrk, 1 s per block and variant, for 1 and 8 clients
CLIENTS = (1, 8)
GUARD_CALLS = 1_000
AUTH_VARIANTS = ("Bearer token", "api-key")
OFF = "auth off"
# bench.floor: the serving stack of `bastion serve --workers 2` around an app that does
# nothing; the same requests, in the same blocks as the variants.
FLOOR = "floor (same uvicorn + workers, an app that does nothing)"


@dataclass(frozen=True)
class Bare:
    """An in-process baseline: queries per second, recall, µs per query."""

    qps: float
    recall: float
    us_per_query: float


@dataclass(frozen=True)
class Measured:
    total: LoadResult  # every block added up
    vs_off: float  # paired-block median of QPS ÷ QPS with authentication off
    recall: float | None
    vs_bare: float | None = None  # paired-block median of QPS ÷ the bare index's QPS


def search_calls(dataset: Dataset) -> list[Call]:
    path = f"/collections/{COLLECTION}/points/query"
    option = orjson.OPT_SERIALIZE_NUMPY
    return [
        Call("POST", path, orjson.dumps({"query": q, "limit": 10}, option=option))
        for q in dataset.queries
    ]


def _ids(body: bytes) -> list[int]:
    return [point["id"] for point in orjson.loads(body)["result"]["points"]]


def _measure(
    variants: Sequence[Variant],
    calls: Sequence[Call],
    *,
    clients: int,
    dataset: Dataset | None = None,
    baseline: Baseline | None = None,
    runner: Runner = run_load,
    recalls: dict[str, float] | None = None,
) -> dict[str, Measured]:
    done = interleave(
        variants,
        calls,
        clients=clients,
        rounds=ROUNDS,
        block=BLOCKS[clients] if runner is run_load else WRK_BLOCK,
        baseline=baseline,
        runner=runner,
    )
    measured = {}
    for label, blocks in done.runs.items():
        total = combine(blocks)
        recall = (recalls or {}).get(label)
        if dataset is not None and total.bodies and label != FLOOR:
            recall = recall_at_k([_ids(body) for body in total.bodies], dataset.truth)
        vs_bare = None
        if done.baseline:
            vs_bare = statistics.median(
                run.rps / rate for run, rate in zip(blocks, done.baseline, strict=True)
            )
        measured[label] = Measured(total, paired_ratio(blocks, done.runs[OFF]), recall, vs_bare)
    return measured


def guard(variants: Sequence[Variant], results: Results) -> None:
    """``variants``: Bearer token, api-key and auth off, as for the searches."""
    exists = [Call("GET", f"/collections/{COLLECTION}/exists")] * GUARD_CALLS
    measured = _measure(variants, exists, clients=1)
    on = variants[0]
    health_calls = [Call("GET", "/healthz")] * GUARD_CALLS
    health = combine(
        [run_load(on.url, health_calls, clients=1, server_pid=on.pid) for _ in range(ROUNDS)]
    )
    section = results.section(
        "What the guard adds per request, through HTTP (1 client, keep-alive)",
        "request",
        "req/s",
        "µs / request",
        "server CPU µs / request",
        "÷ auth off (paired)",
        "added server CPU vs auth off",
        "others' cores busy",
    )
    base = measured[OFF].total
    for label, found in measured.items():
        run = found.total
        section.add(
            f"GET …/exists, {label}",
            fmt(run.rps),
            fmt(1e6 / run.rps),
            fmt(run.server_us_per_call),
            ratio(found.vs_off),
            f"{run.server_us_per_call - base.server_us_per_call:+.0f} µs",
            f"{run.other_cores:.2f}",
        )
    section.add(
        "GET /healthz (unauthenticated; no database read)",
        fmt(health.rps),
        fmt(1e6 / health.rps),
        fmt(health.server_us_per_call),
        "",
        "",
        f"{health.other_cores:.2f}",
    )
    section.notes.append(
        f"GET /collections/{{name}}/exists runs authenticate + authz.decide and one dict "
        f"lookup. {ROUNDS} x {GUARD_CALLS:,} requests per variant, interleaved in blocks of "
        f"{BLOCKS[1]}."
    )
    bearer = measured["Bearer token"].total
    results.headline(
        "guard cost per cheap request (cached credential)",
        f"{bearer.server_us_per_call - base.server_us_per_call:+.0f} µs server CPU "
        f"(÷ auth off {ratio(measured['Bearer token'].vs_off)})",
        "extra server CPU of GET …/exists with a Bearer token over the same request with "
        "authentication off, and the req/s ratio",
    )


def searches(
    variants: Sequence[Variant], dataset: Dataset, bare: Baseline
) -> dict[int, dict[str, Measured]]:
    """``bare(start, end)``: queries per second of the bare index over those queries,
    in this process; it runs after every block, so each block has its own baseline."""
    calls = search_calls(dataset)
    if not wrk.available():
        return {
            clients: _measure(variants, calls, clients=clients, dataset=dataset, baseline=bare)
            for clients in CLIENTS
        }
    # wrk keeps no answers: recall comes from one pass per variant with bench.wire.
    recalls = {
        variant.label: recall_at_k(
            [
                _ids(body)
                for body in run_load(
                    variant.url,
                    calls,
                    clients=1,
                    server_pid=variant.pid,
                    headers=variant.headers,
                    keep_bodies=True,
                ).bodies
            ],
            dataset.truth,
        )
        for variant in variants
        if variant.label != FLOOR
    }
    return {
        clients: _measure(
            variants, calls, clients=clients, baseline=bare, runner=run_wrk, recalls=recalls
        )
        for clients in CLIENTS
    }


def client_description() -> str:
    if wrk.available():
        return (
            f"Client: wrk (C, one thread, epoll over the connections, bench/wrk.py): a "
            f"block is {WRK_BLOCK} queries sent in order and over again for 1 s, 8 clients "
            "= 8 keep-alive connections; recall@10 from one separate pass per variant over "
            "all queries with bench.wire; p50 / p99: median / worst of the blocks' figures."
        )
    return (
        f"Client: bench.wire (pre-encoded requests over keep-alive sockets, like wrk; wrk "
        f"is not installed), blocks of {BLOCKS[1]} queries with 1 client and {BLOCKS[8]} "
        "with 8; 8 clients = 8 threads in this process, one connection each."
    )


def _clients(n: int) -> str:
    return f"{n} client{'s' if n > 1 else ''}"


def report(
    dataset: Dataset,
    found: dict[int, dict[str, Measured]],
    bare: Bare,
    engine: Bare,
    results: Results,
) -> None:
    section = results.section(
        "Search: recall@10 and QPS (issue 3)",
        "path",
        "clients",
        "QPS",
        "p50 ms",
        "p99 ms",
        "recall@10",
        "server CPU µs/q",
        "client CPU µs/q",
        "÷ auth off (paired)",
        "÷ bare index",
        "others' cores busy",
    )
    for label, baseline, unit in (
        ("bare index in-process (AnnIndex, hnswlib, ef=64)", bare, "1 thread"),
        ("engine in-process (EmbeddedEngine.search)", engine, "1 task"),
    ):
        section.add(
            label,
            unit,
            fmt(baseline.qps),
            f"{baseline.us_per_query / 1e3:.3f}",
            "",
            f"{baseline.recall:.4f}",
            f"{baseline.us_per_query:.0f}",
            "",
            "",
            ratio(baseline.qps / bare.qps),
            "",
        )
    for clients, measured in found.items():
        for label, item in measured.items():
            run = item.total
            floor = label == FLOOR
            section.add(
                f"HTTP, {label}",
                str(clients),
                fmt(run.rps),
                f"{run.p50_ms:.2f}",
                f"{run.p99_ms:.2f}",
                "" if floor else f"{item.recall or 0:.4f}",
                fmt(run.server_us_per_call),
                fmt(run.client_us_per_call),
                "" if floor else ratio(item.vs_off),
                ratio(_vs_bare(item, bare)),
                f"{run.other_cores:.2f}",
            )
    section.notes += [
        dataset.describe() + ".",
        f"HTTP: POST /collections/{{name}}/points/query, limit 10; {ROUNDS} rounds over "
        "the queries per variant, the variants (and the floor) interleaved block by block, each "
        "block followed by the bare index answering the same queries; QPS over all "
        "blocks; ÷ auth off and ÷ bare index are medians over paired blocks.",
        client_description(),
        "The machine has 2 cores and the client runs on it too: server and client CPU per "
        'query show how the cores were shared; "others\' cores busy" is CPU used by every '
        "other process on the machine meanwhile (0 on a quiet machine). The server runs "
        "2 worker processes (`bastion serve --workers 2`, one per core; server CPU is both "
        "together), each a uvicorn event loop plus one thread for graph searches that "
        "arrive together (docs/vectors.md).",
        f"The {FLOOR} row is bench/floor.py: the same uvicorn options and worker "
        "supervisor as `bastion serve --workers 2`, an ASGI app that reads the body and "
        "answers a stored search answer of the same size. It is the HTTP cost before "
        "Bastion does anything; with 1 client (requests in series) no server on this "
        "stack can do better than the floor's time plus the bare index's: its ÷ bare "
        "index q caps HTTP ÷ bare index at q / (1 + q).",
    ]
    _targets(found, bare, results)
    every = [item.total for measured in found.values() for item in measured.values()]
    results.headline(
        "others' load / hypervisor steal during the HTTP runs",
        f"{statistics.mean(run.other_cores for run in every):.2f} / "
        f"{statistics.mean(run.steal_cores for run in every):.2f} cores",
        "CPU used by other processes on this machine, and CPU time the hypervisor took "
        "away, while the searches ran; 0 / 0 is a quiet machine",
    )


def _targets(found: dict[int, dict[str, Measured]], bare: Bare, results: Results) -> None:
    for clients, measured in found.items():
        off = measured[OFF].total
        for label in AUTH_VARIANTS:
            item = measured[label]
            added = item.total.server_us_per_call - off.server_us_per_call
            results.target(
                f"authenticated ÷ unauthenticated QPS ({label}, {_clients(clients)})",
                ratio(item.vs_off),
                "≥ 0.97",
                item.vs_off >= 0.97,
                f"authentication added {added:+.0f} µs of server CPU per query "
                f"({item.total.server_us_per_call:.0f} vs {off.server_us_per_call:.0f})",
            )
    for clients, measured in found.items():
        item = measured["Bearer token"]
        run = item.total
        value = _vs_bare(item, bare)
        recall = item.recall or 0.0
        why = (
            f"the server spends {run.server_us_per_call:.0f} µs CPU per query against "
            f"{bare.us_per_query:.0f} µs in the bare index; the client used "
            f"{run.client_us_per_call:.0f} µs CPU per query of the same 2 cores"
        )
        if clients == 1 and FLOOR in measured:
            floor = measured[FLOOR]
            why += (
                f"; uvicorn with an app that does nothing answers in "
                f"{1e6 / floor.total.rps:.0f} µs per request (1 client, in series), which "
                f"caps any server on this stack at {ratio(ceiling(floor, bare))}"
            )
        results.target(
            f"HTTP ÷ bare index QPS (Bearer, {_clients(clients)}), recall ≥ 0.95",
            f"{ratio(value)} at recall {recall:.3f}",
            "≥ 0.5 at recall ≥ 0.95",
            value >= 0.5 and recall >= 0.95,
            why,
        )
    best = max(
        ((clients, measured["Bearer token"]) for clients, measured in found.items()),
        key=lambda pair: pair[1].total.rps,
    )
    results.headline(
        "QPS through HTTP, authenticated (Bearer)",
        f"{fmt(best[1].total.rps)} ({_clients(best[0])})",
        f"recall@10 {best[1].recall or 0:.3f}; bare index {fmt(bare.qps)} QPS at recall "
        f"{bare.recall:.3f}",
    )
    if FLOOR in found.get(1, {}):
        results.headline(
            "HTTP ÷ bare index ceiling (1 client)",
            ratio(ceiling(found[1][FLOOR], bare)),
            "the best any server on this HTTP stack could do: uvicorn with an app that "
            "does nothing (bench/floor.py) plus the bare index's time, in series",
        )
    for clients, measured in found.items():
        item = measured["Bearer token"]
        results.headline(
            f"authenticated ÷ unauthenticated ({_clients(clients)})",
            ratio(item.vs_off),
            "search QPS with a Bearer token over QPS of the same data with authentication "
            "off (median of paired blocks)",
        )
        results.headline(
            f"HTTP ÷ bare index ({_clients(clients)})",
            ratio(_vs_bare(item, bare)),
            "authenticated search QPS through HTTP over the bare in-process index (1 thread), "
            "median of paired blocks",
        )


def _vs_bare(item: Measured, bare: Bare) -> float:
    """Paired with the bare index block by block when measured so; else over the runs."""
    return item.vs_bare if item.vs_bare is not None else item.total.rps / bare.qps


def ceiling(floor: Measured, bare: Bare) -> float:
    """HTTP ÷ bare index of a server that answers in the floor's time plus the bare
    index's, in series (1 client): with q = floor ÷ bare index, 1 / (1/q + 1) = q / (1 + q)
    (per paired block; the median carries over, q / (1 + q) rising with q)."""
    q = _vs_bare(floor, bare)
    return q / (1 + q)
