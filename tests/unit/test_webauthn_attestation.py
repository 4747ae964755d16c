"""``webauthn_attestation = direct``: roots and an AAGUID allow-list (§7.1 steps 23-24)."""

from __future__ import annotations

import base64
import contextlib
import random
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from tests.support.authenticator import SoftAuthenticator, TestCA
from tests.support.webauthn import NOW, ORIGIN, RP, creation_options, register

from bastion.errors import AttestationRefused
from bastion.factors.webauthn import AttestationPolicy, Refusal, b64url, verify_registration

MODEL = UUID("2fc0579f-8113-47ea-b116-bb5a8db9202a")
CA = TestCA.create()
DIRECT = AttestationPolicy(conveyance="direct", roots=(CA.root,))
ONLY_MODEL = AttestationPolicy(
    conveyance="direct", roots=(CA.root,), allowed_aaguids=frozenset({MODEL})
)


def issued_key(**kwargs: object) -> SoftAuthenticator:
    return SoftAuthenticator(aaguid=MODEL, attestation="packed", ca=CA, **kwargs)  # type: ignore[arg-type]


def test_options_ask_for_direct_attestation() -> None:
    options, _ = creation_options(DIRECT)
    assert options["attestation"] == "direct"


@pytest.mark.parametrize("policy", [DIRECT, ONLY_MODEL])
def test_key_issued_by_the_organisation_is_trusted(policy: AttestationPolicy) -> None:
    result = register(issued_key(), policy=policy)
    assert (result.attestation_format, result.attestation_trusted) == ("packed", True)
    assert result.aaguid == MODEL


def test_the_same_key_under_the_none_policy_is_not_judged() -> None:
    result = register(issued_key(strip_attestation=False))
    assert (result.attestation_format, result.attestation_trusted) == ("packed", False)


@pytest.mark.parametrize(
    ("authenticator", "reason"),
    [
        # no attestation at all: anyone's authenticator
        (SoftAuthenticator(aaguid=MODEL), Refusal.ATTESTATION_NOT_TRUSTED),
        # self attestation: signed by the new key itself, proves no make
        (
            SoftAuthenticator(aaguid=MODEL, attestation="packed-self"),
            Refusal.ATTESTATION_NOT_TRUSTED,
        ),
        # a chain to a CA the organisation does not trust
        (
            SoftAuthenticator(aaguid=MODEL, attestation="packed", ca=TestCA.create("Other")),
            Refusal.ATTESTATION_NOT_TRUSTED,
        ),
        # a trusted certificate for another model than the one the key claims to be
        (issued_key(attestation_cert_aaguid=uuid4()), Refusal.ATTESTATION_NOT_TRUSTED),
        # a trusted key of a model that is not on the list
        (
            SoftAuthenticator(aaguid=uuid4(), attestation="packed", ca=CA),
            Refusal.AAGUID_NOT_ALLOWED,
        ),
    ],
)
def test_authenticator_the_policy_refuses(
    authenticator: SoftAuthenticator, reason: Refusal
) -> None:
    with pytest.raises(AttestationRefused) as excinfo:
        register(authenticator, policy=ONLY_MODEL)
    assert excinfo.value.code == reason.value


@pytest.mark.parametrize(
    "now",
    [
        datetime(2019, 12, 31, tzinfo=UTC),  # before the chain is valid
        CA.root.not_valid_after_utc + timedelta(days=1),  # after it expired
    ],
)
def test_attestation_is_judged_at_the_time_passed_in(now: datetime) -> None:
    with pytest.raises(AttestationRefused) as excinfo:
        register(issued_key(), policy=DIRECT, now=now)
    assert excinfo.value.code == Refusal.ATTESTATION_NOT_TRUSTED.value
    assert register(issued_key(), policy=DIRECT, now=NOW).attestation_trusted


def test_direct_attestation_needs_roots_and_a_list_needs_direct() -> None:
    with pytest.raises(ValueError, match="root"):
        AttestationPolicy(conveyance="direct")
    with pytest.raises(ValueError, match="direct"):
        AttestationPolicy(allowed_aaguids=frozenset({MODEL}))


def test_mutated_attestation_under_direct_never_escapes_as_another_error() -> None:
    options, challenge = creation_options(ONLY_MODEL)
    response = issued_key().create(options, origin=ORIGIN)
    original = base64.urlsafe_b64decode(response["response"]["attestationObject"] + "==")
    rng = random.Random(7)
    for _ in range(300):
        mutated = bytearray(original)
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        response["response"]["attestationObject"] = b64url(bytes(mutated))
        with contextlib.suppress(AttestationRefused):
            result = verify_registration(
                credential=response,
                rp=RP,
                expected_challenge=challenge,
                attestation=ONLY_MODEL,
                now=NOW,
            )
            assert result.attestation_trusted  # whatever still verifies is still trusted
