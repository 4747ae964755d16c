"""Docs that can drift are checked: every setting is documented."""

from __future__ import annotations

from pathlib import Path

from bastion.config import NOT_SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_configuration_docs() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"BASTION_{name.upper()}" not in text]
    assert missing == []


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("## ", 1)[0]
    assert "make serve" in head
    assert "make test" in head


def test_readme_names_every_variable_bastion_reads() -> None:
    text = (ROOT / "README.md").read_text()
    names = [f"BASTION_{name.upper()}" for name in Settings.model_fields]
    missing = [name for name in [*names, *NOT_SETTINGS] if name not in text]
    assert missing == []
