"""Fixtures of the console tests: the real app in process (see ``helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.helpers import Console, console_env


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from console_env(tmp_path)
