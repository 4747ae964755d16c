"""Shared fixtures: a real server on loopback, and the in-process app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import Env, app_env
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
