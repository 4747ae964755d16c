"""Shared fixtures: a real server on loopback, and the in-process app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import Env, app_env
from tests.support.postgres import (
    MISSING_PGVECTOR,
    MISSING_SERVER,
    has_pgvector,
    postgres_cluster,
    server_bin_dir,
)
from tests.support.server import LiveServer, start_server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real ``bastion serve`` on a free loopback port, one per test module."""
    data_dir: Path = tmp_path_factory.mktemp("bastion") / "data"
    server = start_server(data_dir)
    try:
        yield LiveServer(server)
    finally:
        server.stop()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """The real app in-process (TestClient), fresh data folder, a ManualClock."""
    yield from app_env(tmp_path)


def _missing(reason: str) -> None:
    """Skip, saying why; under CI (``CI=true``) fail: CI must run the PostgreSQL tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL cluster for the whole run (``fresh_database`` per user)."""
    if server_bin_dir() is None:
        _missing(MISSING_SERVER)
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def pgvector_url(postgres_url: str) -> str:
    """The cluster, when it has pgvector (the pgvector engine's tests need it)."""
    if not has_pgvector():
        _missing(MISSING_PGVECTOR)
    return postgres_url
