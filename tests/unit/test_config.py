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


def test_no_setting_turns_authentication_off() -> None:
    """The bench's switch is its own app factory (bench/app.py), not a setting."""
    with pytest.raises(ConfigurationError):
        load_settings(auth_disabled_for_benchmarks=True)


def test_unknown_bastion_variable_is_an_error_naming_the_nearest_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASTION_PROT", "8080")
    with pytest.raises(ConfigurationError, match=r"BASTION_PROT: .*did you mean BASTION_PORT"):
        load_settings()


def test_variables_that_are_not_settings_but_are_read_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASTION_CONFIG", "")
    assert load_settings().anonymous_read is False


@pytest.mark.parametrize(
    "url",
    ["vectors.example.com", "ftp://vectors.example.com", "/bastion", "https://", "http://h/?q=1"],
)
def test_public_url_must_be_an_absolute_http_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("BASTION_PUBLIC_URL", url)
    with pytest.raises(ConfigurationError, match="BASTION_PUBLIC_URL"):
        load_settings()


def test_public_url_loses_its_trailing_slash_and_names_the_issuer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASTION_PUBLIC_URL", "https://vectors.example.com/")
    settings = load_settings()
    assert settings.resolved_public_url == "https://vectors.example.com"
    assert settings.resolved_issuer == "https://vectors.example.com"


@pytest.mark.parametrize(
    ("host", "tls", "expected"),
    [
        ("127.0.0.1", False, "http://localhost:6333"),
        ("127.0.0.2", False, "http://localhost:6333"),
        ("::1", False, "http://localhost:6333"),
        ("127.0.0.1", True, "https://localhost:6333"),
        ("10.1.2.3", False, "http://10.1.2.3:6333"),
        ("::", False, "http://[::]:6333"),
        ("vectors.internal", False, "http://vectors.internal:6333"),
    ],
)
def test_default_public_url_names_a_loopback_host_localhost(
    tmp_path: Path, host: str, tls: bool, expected: str
) -> None:
    files = {"tls_cert": tmp_path / "c.pem", "tls_key": tmp_path / "k.pem"} if tls else {}
    settings = load_settings(host=host, **files)
    assert settings.resolved_public_url == expected
    assert settings.resolved_issuer == expected  # tokens name the same origin


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trusted_proxies == ()
    monkeypatch.setenv("BASTION_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1")
    assert load_settings().trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    monkeypatch.setenv("BASTION_TRUSTED_PROXIES", "127.0.0.1,*")
    with pytest.raises(ConfigurationError, match=r"BASTION_TRUSTED_PROXIES.*'\*'"):
        load_settings()


def test_tls_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="BASTION_TLS_KEY"):
        load_settings(tls_cert=tmp_path / "cert.pem")
