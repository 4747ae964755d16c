"""``BASTION_WEBAUTHN_*``: defaults from the public URL, and what start-up refuses."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from tests.support.authenticator import TestCA

from bastion.config import load_settings
from bastion.errors import ConfigurationError
from bastion.factors.webauthn import (
    attestation_policy_from_settings,
    relying_party_from_settings,
)

MODEL = "2fc0579f-8113-47ea-b116-bb5a8db9202a"


@pytest.mark.parametrize(
    ("public_url", "rp_id", "origin"),
    [
        ("http://localhost:6333", "localhost", "http://localhost:6333"),
        ("https://Vectors.Example.com/", "vectors.example.com", "https://vectors.example.com"),
        (
            "https://vectors.example.com:8443/base",
            "vectors.example.com",
            "https://vectors.example.com:8443",
        ),
    ],
)
def test_relying_party_defaults_come_from_the_public_url(
    public_url: str, rp_id: str, origin: str
) -> None:
    rp = relying_party_from_settings(load_settings(public_url=public_url))
    assert (rp.id, rp.origins, rp.name) == (rp_id, (origin,), "Bastion")


@pytest.mark.parametrize("public_url", ["http://127.0.0.1:6333", "http://[::1]:6333"])
def test_an_ip_address_public_url_leaves_webauthn_off(public_url: str) -> None:
    # Browsers refuse WebAuthn on IP-address origins.
    settings = load_settings(public_url=public_url, host="127.0.0.1")
    assert settings.resolved_webauthn_rp_id is None
    with pytest.raises(ConfigurationError, match="localhost"):
        relying_party_from_settings(settings)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_default_public_url_on_loopback_is_a_webauthn_origin(host: str) -> None:
    rp = relying_party_from_settings(load_settings(host=host, port=6333))
    assert (rp.id, rp.origins) == ("localhost", ("http://localhost:6333",))


def test_several_origins_behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_WEBAUTHN_RP_ID", "example.com")
    monkeypatch.setenv(
        "BASTION_WEBAUTHN_ORIGINS", "https://vectors.example.com, https://console.example.com:8443"
    )
    monkeypatch.setenv("BASTION_WEBAUTHN_RP_NAME", "Acme vectors")
    rp = relying_party_from_settings(load_settings())
    assert rp.id == "example.com"
    assert rp.origins == ("https://vectors.example.com", "https://console.example.com:8443")
    assert rp.name == "Acme vectors"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"webauthn_rp_id": "127.0.0.1"}, "WEBAUTHN_RP_ID"),
        ({"webauthn_rp_id": "https://example.com"}, "WEBAUTHN_RP_ID"),
        ({"webauthn_rp_id": "Example.com"}, "WEBAUTHN_RP_ID"),
        ({"webauthn_rp_id": "example.com", "webauthn_origins": "https://example.org"}, "subdomain"),
        ({"webauthn_rp_id": "example.com", "webauthn_origins": "http://example.com"}, "https"),
        ({"webauthn_rp_id": "example.com", "webauthn_origins": "https://example.com/"}, "path"),
        (
            {"webauthn_rp_id": "example.com", "webauthn_origins": "https://evilexample.com"},
            "subdomain",
        ),
        (
            {"public_url": "http://127.0.0.1:6333", "webauthn_origins": "https://example.com"},
            "webauthn_rp_id",
        ),
        ({"webauthn_attestation": "direct"}, "webauthn_attestation_roots"),
        ({"webauthn_allowed_aaguids": MODEL}, "direct"),
        ({"webauthn_allowed_aaguids": "not-a-uuid"}, "WEBAUTHN_ALLOWED_AAGUIDS"),
        ({"webauthn_attestation_roots": "/nonexistent/roots.pem"}, "WEBAUTHN_ATTESTATION_ROOTS"),
    ],
)
def test_bad_webauthn_settings_stop_the_server(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(**settings)


def test_http_is_accepted_for_localhost_origins() -> None:
    settings = load_settings(webauthn_rp_id="localhost", webauthn_origins="http://localhost:8080")
    assert relying_party_from_settings(settings).origins == ("http://localhost:8080",)


def test_direct_attestation_reads_the_roots_file(tmp_path: Path) -> None:
    ca = TestCA.create()
    roots = tmp_path / "roots.pem"
    roots.write_bytes(b"Our key vendor's root\n" + ca.root_pem())
    settings = load_settings(
        webauthn_attestation="direct",
        webauthn_attestation_roots=str(roots),
        webauthn_allowed_aaguids=f"{MODEL}, 00000000-0000-0000-0000-000000000000",
    )
    policy = attestation_policy_from_settings(settings)
    assert policy.conveyance == "direct"
    assert policy.roots == (ca.root,)
    assert policy.allowed_aaguids == {UUID(MODEL), UUID(int=0)}


def test_a_roots_file_without_certificates_stops_the_server(tmp_path: Path) -> None:
    roots = tmp_path / "roots.pem"
    roots.write_text("not a certificate\n")
    settings = load_settings(webauthn_attestation="direct", webauthn_attestation_roots=str(roots))
    with pytest.raises(ConfigurationError, match="BASTION_WEBAUTHN_ATTESTATION_ROOTS"):
        attestation_policy_from_settings(settings)


def test_default_policy_is_none() -> None:
    policy = attestation_policy_from_settings(load_settings())
    assert (policy.conveyance, policy.roots, policy.allowed_aaguids) == ("none", (), None)


def test_extra_origins_are_checked_against_the_public_url_host() -> None:
    settings = load_settings(
        public_url="https://vectors.example.com",
        webauthn_origins="https://vectors.example.com,https://console.vectors.example.com",
    )
    assert relying_party_from_settings(settings).id == "vectors.example.com"
    with pytest.raises(ConfigurationError, match="subdomain"):
        load_settings(
            public_url="https://vectors.example.com", webauthn_origins="https://example.com"
        )
