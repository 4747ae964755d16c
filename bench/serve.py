"""``python -m bench.serve serve --data-dir D --port P``: ``bastion serve`` with the bench's
app (``bench.app``: requests without credentials skip the door).

The same serving stack as ``bastion serve`` (``bastion.cli.serve``), built from its own
parts: the data folder and its lock, uvicorn with the same options
(``uvicorn_options``), and with ``BASTION_WORKERS`` > 1 the same worker supervisor
(``bastion.cli.workers``) and start-up (``EmbeddedEngine.prepare_for_workers``). Settings
come from the environment as for ``bastion serve``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn
from fastapi import FastAPI

from bastion.cli.listen import ReadyServer, bind
from bastion.cli.serve import uvicorn_options
from bastion.cli.workers import run_workers
from bastion.config import Settings, load_settings
from bastion.datadir import lock_for_server, prepare
from bastion.vectors import EmbeddedEngine
from bench.app import create_bench_app


def worker_app() -> FastAPI:
    """The app of one worker process (the settings come from the parent's environment)."""
    settings = load_settings()
    _configure_logging(settings)
    return create_bench_app(settings, worker=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings(data_dir=args.data_dir, port=args.port)
    _configure_logging(settings)
    count = settings.resolved_workers
    options = uvicorn_options(settings)
    listener = bind(settings.host, settings.port)
    if count > 1:
        listener.close()  # only a check: each worker binds its own socket
    prepare(settings.data_dir)
    lock = lock_for_server(settings.data_dir)
    application = create_bench_app(settings)
    if count == 1:
        config = uvicorn.Config(application, host=settings.host, port=settings.port, **options)
        ReadyServer(config, on_ready=lambda: None).run(sockets=[listener])
        return 0
    EmbeddedEngine.prepare_for_workers(application.state.runtime.db, settings.data_dir)
    application.state.runtime.close()
    os.environ.update(
        BASTION_DATA_DIR=str(settings.data_dir.resolve()),
        BASTION_HOST=settings.host,
        BASTION_PORT=str(settings.port),
        BASTION_WORKERS=str(count),
    )
    return run_workers(count, settings.host, settings.port, worker_app, inherit=lock, **options)


def _configure_logging(settings: Settings) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
