"""``bastion serve --workers N``: N uvicorn servers in child processes, one port.

Each worker binds its own listening socket with ``SO_REUSEPORT`` and the kernel spreads
new connections over the workers that have started, by address hash. uvicorn's own
``workers`` share one socket, and the worker that wakes first accepts every connection
waiting: eight clients that connected at once all landed on one worker (measured: no
gain over a single worker).

Each worker holds its own copy of the collections (``bastion.vectors.peers`` keeps them
in step). The parent only watches: when a worker exits on its own the parent stops the
others and exits non-zero (a supervisor such as systemd starts the service again); on
SIGTERM or SIGINT it passes the signal on and waits for every worker's clean shutdown
(which saves the ANN indexes). A worker whose parent vanished (``kill -9``) stops itself.

Anything passed as ``inherit`` (the data folder's lock, ``bastion.datadir.FolderLock``)
is handed to every worker, so the lock stays held until the last worker has exited. Once
every worker accepts connections the parent calls ``on_ready`` (it prints "listening").
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from bastion.cli.listen import ReadyServer, bind

log = logging.getLogger("bastion")
PARENT_CHECK_SECONDS = 1.0


def run_workers(
    count: int,
    host: str,
    port: int,
    make_app: Callable[[], Any],
    *,
    inherit: object = None,
    on_ready: Callable[[], object] | None = None,
    **options: Any,
) -> int:
    """Run ``count`` workers until a signal or a worker's own exit; the exit code."""
    context = multiprocessing.get_context("spawn")
    started = context.Semaphore(0)  # one release per worker that accepts connections
    workers = [
        context.Process(
            target=_serve,
            args=(os.getpid(), host, port, make_app, options, started, inherit),
            name=f"bastion-worker-{number}",
        )
        for number in range(count)
    ]
    stopping = threading.Event()
    failed = False

    def stop(signum: int, _frame: Any) -> None:
        stopping.set()
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    waiting = count
    try:
        for worker in workers:
            worker.start()
        while not stopping.is_set():
            ended = [worker for worker in workers if worker.exitcode is not None]
            if ended:
                failed = True
                log.error(
                    "worker %s exited with code %s: stopping the others",
                    ended[0].name,
                    ended[0].exitcode,
                )
                stop(signal.SIGTERM, None)
                break
            if waiting and started.acquire(timeout=0.2):
                waiting -= 1
                if not waiting and on_ready is not None:
                    on_ready()
            elif not waiting:
                time.sleep(0.2)
        for worker in workers:
            worker.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0


def _serve(
    parent: int,
    host: str,
    port: int,
    make_app: Callable[[], Any],
    options: dict[str, Any],
    started: Any,
    inherited: object,
) -> None:
    _stop_with_parent(parent)
    # Not listening yet: uvicorn listens once the app has started, so until a worker has
    # loaded its collections the kernel sends it no connections.
    listener = bind(host, port, reuse_port=True)
    config = uvicorn.Config(make_app(), host=host, port=port, **options)
    ReadyServer(config, on_ready=started.release).run(sockets=[listener])
    del inherited  # held (the data folder's lock) until the server has stopped


def _stop_with_parent(parent: int) -> None:
    """SIGTERM to this worker once ``parent`` is gone (even if it went before we looked)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="bastion-parent-watch", daemon=True).start()
