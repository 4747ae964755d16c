"""The import contracts of pyproject.toml (``[tool.importlinter]``): layers import
downwards only (docs/architecture.md), and only storage and the domain services touch
the tables. An upward import, or a route reaching for ``storage.schema``, fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "0 broken" in report
