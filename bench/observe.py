"""What the per-request instrumentation costs (issue 16): the same request, in-process,
through the app's middleware stack with and without ``api.observe.Observe``.

One app (real SQLite, a collection of ``POINTS`` x ``DIM`` vectors, a real API key), two
ASGI stacks built from it: the app's own, and the same with ``Observe`` left out. Each
request is called on the stack directly (no HTTP, no client: what remains is Bastion's
own work, so the middleware's share is as large as it can look). The two stacks take
turns in blocks of ``BLOCK`` requests, ``ROUNDS`` times, so drift of the shared machine
hits both alike; the ratio is the median of the paired blocks' ratios.

``python -m bench.observe`` runs this part alone.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message

from bastion.api.observe import Observe
from bastion.config import load_settings
from bench.app import create_bench_app
from bench.report import Results, console, fmt, print_section, ratio
from bench.servers import ADMIN_PASSWORD, Credentials

POINTS = 5_000
DIM = 384
BLOCK = 400
ROUNDS = 12
COLLECTION = "observe"


@dataclass(frozen=True)
class Call:
    label: str
    method: str
    path: str
    body: bytes
    headers: list[tuple[bytes, bytes]]


def _scope(app: FastAPI, call: Call) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": call.method,
        "scheme": "http",
        "path": call.path,
        "raw_path": call.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": call.headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 6333),
        "app": app,
    }


async def _request(stack: ASGIApp, app: FastAPI, call: Call) -> int:
    status = 0
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if body_sent:
            await asyncio.sleep(3600)
        body_sent = True
        return {"type": "http.request", "body": call.body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await stack(_scope(app, call), receive, send)
    return status


async def _block(stack: ASGIApp, app: FastAPI, call: Call, count: int) -> float:
    """µs per request over ``count`` requests in series."""
    started = time.perf_counter()
    for _ in range(count):
        status = await _request(stack, app, call)
        if status != 200:
            raise RuntimeError(f"{call.label}: status {status}")
    return (time.perf_counter() - started) / count * 1e6


def _stacks(app: FastAPI) -> tuple[ASGIApp, ASGIApp]:
    """The app's middleware stack, and the same stack without ``Observe``."""
    kept = app.user_middleware
    without = [entry for entry in kept if entry.cls is not Observe]
    if len(without) != len(kept) - 1:
        raise RuntimeError("the app's middleware does not include Observe once")
    observed = app.build_middleware_stack()
    app.user_middleware = without
    try:
        bare = app.build_middleware_stack()
    finally:
        app.user_middleware = kept
    return observed, bare


async def _prepare(app: FastAPI, put: Callable[[Call], Awaitable[int]]) -> None:
    """A collection of ``POINTS`` random unit vectors, written without a credential
    (the bench's door lets those through) through the app itself."""
    create = orjson.dumps(  # an HNSW search, as in production (not an exact scan)
        {"vectors": {"size": DIM, "distance": "Cosine"}, "hnsw_config": {"full_scan_threshold": 0}}
    )
    assert await put(Call("create", "PUT", f"/collections/{COLLECTION}", create, [])) == 200
    rng = np.random.default_rng(16)
    vectors = rng.standard_normal((POINTS, DIM), dtype=np.float32)
    for start in range(0, POINTS, 1000):
        points = [{"id": i, "vector": vectors[i].tolist()} for i in range(start, start + 1000)]
        body = orjson.dumps({"points": points})
        path = f"/collections/{COLLECTION}/points"
        assert await put(Call("upsert", "PUT", path, body, [])) == 200


async def _measure(app: FastAPI, api_key: str, results: Results) -> None:
    observed, bare = _stacks(app)
    async with app.router.lifespan_context(app):
        await _prepare(app, lambda call: _request(observed, app, call))
        key = [(b"api-key", api_key.encode()), (b"content-type", b"application/json")]
        query = np.random.default_rng(7).standard_normal(DIM).astype(np.float32)
        calls = [
            Call("GET …/exists (api-key)", "GET", f"/collections/{COLLECTION}/exists", b"", key),
            Call(
                "POST …/points/query, limit 10 (api-key)",
                "POST",
                f"/collections/{COLLECTION}/points/query",
                orjson.dumps({"query": query.tolist(), "limit": 10}),
                key,
            ),
        ]
        section = results.section(
            "What the per-request instrumentation costs (in-process, no HTTP)",
            "request",
            "µs / request without",
            "µs / request with",
            "added µs",
            "with ÷ without (paired)",
        )
        paired = 0.0
        for call in calls:
            for stack in (observed, bare):  # warm both
                await _block(stack, app, call, BLOCK // 4)
            pairs = []
            for turn in range(ROUNDS):
                first, second = (observed, bare) if turn % 2 == 0 else (bare, observed)
                a = await _block(first, app, call, BLOCK)
                b = await _block(second, app, call, BLOCK)
                pairs.append((a, b) if first is observed else (b, a))
            with_us = statistics.median(pair[0] for pair in pairs)
            without_us = statistics.median(pair[1] for pair in pairs)
            paired = statistics.median(pair[0] / pair[1] for pair in pairs)
            section.add(
                call.label,
                fmt(without_us, 1),
                fmt(with_us, 1),
                f"{with_us - without_us:+.1f}",
                ratio(paired),
            )
        section.notes.append(
            f"{POINTS:,} x {DIM} vectors; {ROUNDS} rounds of {BLOCK} requests per stack, "
            "taking turns; 'with' is the app's own stack (request id, metrics tally, "
            "X-Request-ID header), 'without' the same stack with Observe left out. "
            "Medians over the rounds."
        )
        results.headline(
            "per-request instrumentation (request id + metrics)",
            f"{ratio(paired)} (query)",
            "in-process µs of a search with Observe over the same search without it "
            "(paired blocks); 1.0 would be free",
        )


def run(root: Path, results: Results) -> None:
    data_dir = root / "observe"
    env = {"BASTION_ARGON2_PROFILE": "test", "BASTION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD}
    settings = load_settings(
        data_dir=data_dir,
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
        log_level="warning",
    )
    app = create_bench_app(settings)  # credential-less requests pass (the setup only)
    api_key = Credentials(data_dir, env).api_key(role="viewer")
    asyncio.run(_measure(app, api_key, results))


def main() -> None:
    results = Results()
    with tempfile.TemporaryDirectory(prefix="bastion-bench-observe-") as root:
        run(Path(root), results)
    for section in results.sections:
        print_section(section)
    for figure, value, meaning in results.summary:
        console.print(f"{figure}: {value}  ({meaning})")


if __name__ == "__main__":
    main()
