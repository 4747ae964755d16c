"""``wrk`` as the load generator for the timed search blocks, when it is installed.

The client shares this machine's 2 cores with the server, so its cost is part of what
is measured. ``wrk`` (C, one thread, epoll over all connections) spends ~10 µs of CPU
per request where ``bench.wire`` (Python threads) spends ~60-90, and it never makes a
connection wait for another thread's turn at the GIL: with 8 connections it measured
15-40 % more searches per second from the same server. ``make bench`` installs it (the
Debian package ``wrk``) when it runs as root; without it the bench falls back to
``bench.wire`` and says so in its notes.

wrk runs for a time, not a count: a block of n calls runs n / ``CALLS_PER_SECOND``
seconds (whole seconds, at least 1), sending the block's requests in order and over
again (a Lua script reads the bodies from a file and prints wrk's summary), so the bare
index paired with it answers the same queries. wrk reports latency percentiles per
block, not every latency; the ≤ ``clients`` requests in flight when a block ends are
answered but not counted.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.load import Call, LoadResult, machine_seconds
from bench.servers import cpu_seconds

SCRIPT = r"""
local requests, next_index = {}, 0

-- BENCH_WRK_PORTS="p1 p2 ...": thread i connects to 127.0.0.1:p(i mod n), as a load
-- balancer spreading connections over replicas would (bench/replicas.py).
local ports, threads = {}, 0
for port in string.gmatch(os.getenv("BENCH_WRK_PORTS") or "", "%d+") do
  ports[#ports + 1] = port
end

function setup(thread)
  if #ports > 0 then
    threads = threads + 1
    thread.addr = wrk.lookup("127.0.0.1", ports[(threads - 1) % #ports + 1])[1]
  end
end

function init(args)
  local method, path, bodies = args[1], args[2], args[3]
  local headers = {}
  for i = 4, #args, 2 do headers[args[i]] = args[i + 1] end
  for line in io.lines(bodies) do
    if line == "" then line = nil end
    requests[#requests + 1] = wrk.format(method, path, headers, line)
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
CALLS_PER_SECOND = 500  # a block of n calls runs n / 500 s, in whole seconds (wrk's unit)


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    calls: Sequence[Call],
    *,
    clients: int,
    server_pid: int,
    headers: dict[str, str] | None = None,
    keep_bodies: bool = False,
    threads: int = 1,
    ports: Sequence[int] = (),
) -> LoadResult:
    """Send ``calls`` (one method and path, bodies may differ) over and over for
    ``len(calls) / CALLS_PER_SECOND`` s over ``clients`` keep-alive connections with wrk;
    every answer must be 2xx. wrk keeps no answers: ``keep_bodies`` is accepted (the
    ``Runner`` protocol) but the result has none; recall comes from ``run_load``.
    ``threads``: wrk threads, the connections split evenly between them; ``ports``:
    thread *i* connects to ``127.0.0.1:ports[i % len(ports)]`` instead of ``url``."""
    method, path = calls[0].method, calls[0].path
    if any((call.method, call.path) != (method, path) for call in calls):
        raise ValueError("one wrk block sends one method and path")
    sent = {"Content-Type": "application/json", **(headers or {})}
    with tempfile.TemporaryDirectory(prefix="bastion-wrk-") as folder:
        script = Path(folder) / "block.lua"
        script.write_text(SCRIPT)
        bodies = Path(folder) / "bodies"
        bodies.write_bytes(b"\n".join(call.body or b"" for call in calls) + b"\n")
        arguments = [method, path, str(bodies)]
        seconds = f"{max(1, round(len(calls) / CALLS_PER_SECOND))}s"
        for name, value in sent.items():
            arguments += [name, value]
        command = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}", "-s", str(script), url]
        env = {**os.environ, "BENCH_WRK_PORTS": " ".join(str(port) for port in ports)}
        server_before = cpu_seconds(server_pid)
        client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine_before, steal_before = machine_seconds()
        finished = subprocess.run(
            [*command, "--", *arguments], capture_output=True, text=True, check=False, env=env
        )
        machine_after, steal_after = machine_seconds()
        client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = cpu_seconds(server_pid) - server_before
    summary = [line for line in finished.stdout.splitlines() if line.startswith("BENCH ")]
    if finished.returncode != 0 or not summary:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr[:500]}")
    count, micros, bad_status, socket_errors, p50, p99 = (int(v) for v in summary[0].split()[1:])
    if bad_status or socket_errors or count == 0:
        raise RuntimeError(
            f"wrk: {count} answers, {bad_status} not 2xx, {socket_errors} socket errors"
        )
    client_cpu = (client_after.ru_utime - client_before.ru_utime) + (
        client_after.ru_stime - client_before.ru_stime
    )
    return LoadResult(
        count=count,
        clients=clients,
        wall=micros / 1e6,
        latencies=(),
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        machine_cpu=machine_after - machine_before,
        steal=steal_after - steal_before,
        bodies=(),
        percentiles_ms=(p50 / 1e3, p99 / 1e3),
    )
