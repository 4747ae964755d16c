"""Issue 13: an organisation that issues its own keys (``BASTION_WEBAUTHN_ATTESTATION=direct``
with its roots and AAGUIDs) registers only those, through the real app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings
from tests.http.webauthn_helpers import actions, bearer, register_key, signed_in_admin
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator, TestCA
from tests.support.server import ADMIN_PASSWORD

MODEL = UUID("2fc0579f-8113-47ea-b116-bb5a8db9202a")
CA = TestCA.create()


@pytest.fixture
def issuing_env(tmp_path: Path) -> Iterator[Env]:
    roots = tmp_path / "roots.pem"
    roots.write_bytes(CA.root_pem())
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data",
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
        webauthn_attestation="direct",
        webauthn_attestation_roots=roots,
        webauthn_allowed_aaguids=(MODEL,),
    )
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        yield Env(client=client, clock=clock, data_dir=settings.data_dir)


def test_a_key_the_organisation_issued_registers(issuing_env: Env) -> None:
    _, tokens = signed_in_admin(issuing_env)
    options = issuing_env.client.post("/me/factors/webauthn/options", headers=bearer(tokens))
    assert options.json()["attestation"] == "direct"
    issued = SoftAuthenticator(aaguid=MODEL, attestation="packed", ca=CA)
    registered = register_key(issuing_env, bearer(tokens), issued)
    assert registered.status_code == 201, registered.text
    [event] = actions(issuing_env, "webauthn.registered")
    assert event.details["attestation_trusted"] is True
    assert event.details["aaguid"] == str(MODEL)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (SoftAuthenticator(aaguid=MODEL), "attestation_not_trusted"),  # no attestation
        (
            SoftAuthenticator(aaguid=MODEL, attestation="packed", ca=TestCA.create("Other")),
            "attestation_not_trusted",
        ),
        (
            SoftAuthenticator(aaguid=UUID(int=7), attestation="packed", ca=CA),
            "aaguid_not_allowed",
        ),
    ],
    ids=["no-attestation", "another-vendor", "another-model"],
)
def test_a_key_the_organisation_did_not_issue_is_refused(
    issuing_env: Env, key: SoftAuthenticator, reason: str
) -> None:
    _, tokens = signed_in_admin(issuing_env)
    refused = register_key(issuing_env, bearer(tokens), key)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == reason
    assert actions(issuing_env, "webauthn.refused")[-1].reason == reason
