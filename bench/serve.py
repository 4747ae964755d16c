"""``python -m bench.serve serve --data-dir D --port P``: ``bastion serve`` with the bench's
app (``bench.app``: requests without credentials skip the door).

The same serving stack as ``bastion serve`` (``bastion.cli.serve``): uvicorn with the same
options, and with ``BASTION_WORKERS`` > 1 the same worker supervisor
(``bastion.cli.workers``) and start-up (``EmbeddedEngine.prepare_for_workers``).
Settings come from the environment as for ``bastion serve``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from bastion.cli.workers import run_workers
from bastion.config import Settings, load_settings
from bastion.vectors import EmbeddedEngine
from bench.app import create_bench_app


def _options(settings: Settings) -> dict[str, Any]:
    return {"log_level": settings.log_level, "access_log": False, "server_header": False}


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
    application = create_bench_app(settings)
    count = settings.resolved_workers
    if count == 1:
        uvicorn.run(application, host=settings.host, port=settings.port, **_options(settings))
        return 0
    EmbeddedEngine.prepare_for_workers(application.state.runtime.db, settings.data_dir)
    application.state.runtime.close()
    os.environ.update(
        BASTION_DATA_DIR=str(settings.data_dir.resolve()),
        BASTION_HOST=settings.host,
        BASTION_PORT=str(settings.port),
        BASTION_WORKERS=str(count),
    )
    return run_workers(count, settings.host, settings.port, worker_app, **_options(settings))


def _configure_logging(settings: Settings) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
