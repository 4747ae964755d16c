"""Settings: environment, TOML file, validation with messages that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import load_settings
from bastion.errors import ConfigurationError


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text('[bastion]\naccess_token_ttl = 600\naudience = "vectors"\n')
    monkeypatch.setenv("BASTION_CONFIG", str(config))
    monkeypatch.setenv("BASTION_AUDIENCE", "from-env")
    settings = load_settings()
    assert settings.access_token_ttl == 600
    assert settings.audience == "from-env"


def test_token_lifetime_over_15_minutes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_ACCESS_TOKEN_TTL", "3600")
    with pytest.raises(ConfigurationError, match="BASTION_ACCESS_TOKEN_TTL"):
        load_settings()


def test_unknown_keys_and_bad_toml_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text("acces_token_ttl = 600\n")
    monkeypatch.setenv("BASTION_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match="ACCES_TOKEN_TTL"):
        load_settings()
    config.write_text("this is = = not toml")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings()
    monkeypatch.setenv("BASTION_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_settings()


def test_secrets_are_hidden_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_BOOTSTRAP_ADMIN_PASSWORD", "hunter2 but much longer")
    settings = load_settings()
    assert "hunter2" not in repr(settings)


def test_benchmark_auth_switch_needs_the_explicit_acknowledgement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BASTION_I_UNDERSTAND_THIS_IS_INSECURE", raising=False)
    with pytest.raises(ConfigurationError, match="INSECURE"):
        load_settings(auth_disabled_for_benchmarks=True)
