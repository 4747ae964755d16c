"""Fixtures of the console tests: the real app in process (see ``helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.helpers import Console, console_env
from tests.support.browser import chromium_session, start_console_server
from tests.support.server import ServerProcess


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from console_env(tmp_path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real ``bastion serve`` reached as ``http://localhost:PORT``, one per module."""
    process = start_console_server(tmp_path_factory.mktemp("console") / "data")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright, one per module (skips without it, see
    ``tests.support.browser``)."""
    yield from chromium_session()
