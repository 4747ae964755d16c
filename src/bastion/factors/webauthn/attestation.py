"""Attestation trust (WebAuthn §7.1 steps 23-24) for ``webauthn_attestation = direct``.

py_webauthn checks that an attestation statement is well formed and correctly signed
(step 22) but, given no roots, accepts any certificate chain, and it does not compare the
certificate's AAGUID extension with the authenticator data. Bastion therefore judges trust
itself: the chain is built and verified with ``cryptography``'s X.509 verifier against the
configured roots at the ceremony's time (passed in, never read from a clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from bastion.errors import AttestationRefused
from bastion.factors.webauthn.ceremony import refuse
from bastion.factors.webauthn.model import AttestationPolicy, Refusal

__all__ = ["TRUSTABLE_FORMATS", "assess_attestation"]

# Formats whose statement carries the attestation certificate chain in ``x5c``:
# security keys (packed, fido-u2f) and Windows Hello (tpm). Others are refused under
# ``direct``; add one here once it has a test with a real recorded payload.
TRUSTABLE_FORMATS = frozenset({"packed", "fido-u2f", "tpm"})

# id-fido-gen-ce-aaguid: the model identifier the certificate vouches for, which packed
# (§8.2.1) and tpm (§8.3.1) require to match the AAGUID in the authenticator data.
# fido-u2f authenticators report an all-zero AAGUID (§8.6) whatever their certificate says.
_AAGUID_EXTENSION = ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
_AAGUID_MUST_MATCH = frozenset({"packed", "tpm"})
_OCTET_STRING_16 = b"\x04\x10"  # DER header of a 16-byte OCTET STRING


def _verifier(roots: Sequence[x509.Certificate], now: datetime) -> PolicyBuilder:
    # Attestation PKIs are not the web PKI: vendor roots often mark basicConstraints
    # non-critical and leaf certificates carry FIDO extensions. Keep the checks that
    # matter (signatures, validity at `now`, CA flag on issuers, path length) and allow
    # extensions the web-PKI profile would refuse.
    # TPM attestation (AIK) certificates mark certificatePolicies critical (§8.3.1).
    ca_policy = ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, Criticality.AGNOSTIC, None
    )
    ee_policy = ExtensionPolicy.permit_all().may_be_present(
        x509.CertificatePolicies, Criticality.AGNOSTIC, None
    )
    return (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(now)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
    )


def _certificate_aaguid(leaf: x509.Certificate) -> UUID | None:
    try:
        extension = leaf.extensions.get_extension_for_oid(_AAGUID_EXTENSION)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    if len(raw) != 18 or not raw.startswith(_OCTET_STRING_16):
        refuse(AttestationRefused, Refusal.ATTESTATION_NOT_TRUSTED, "Bad attestation AAGUID.")
    return UUID(bytes=raw[2:])


def assess_attestation(
    *,
    policy: AttestationPolicy,
    fmt: str,
    x5c: Sequence[bytes],
    aaguid: UUID,
    now: datetime,
) -> bool:
    """Whether the (already verified) statement is trusted; raise when policy needs trust.

    Returns ``False`` under ``none`` (nothing is judged) and ``True`` when the chain reaches
    a configured root. Refusals: ``attestation_not_trusted``, ``aaguid_not_allowed``.
    """
    if policy.conveyance == "none":
        return False
    # §7.1 step 24: no attestation and self attestation are not acceptable under `direct`.
    if fmt not in TRUSTABLE_FORMATS or not x5c:
        refuse(
            AttestationRefused,
            Refusal.ATTESTATION_NOT_TRUSTED,
            "This authenticator did not prove its make (no attestation certificate).",
        )
    try:
        leaf, *intermediates = (x509.load_der_x509_certificate(der) for der in x5c)
    except Exception:  # ValueError, x509.InvalidVersion…: untrusted DER, any parse failure
        refuse(AttestationRefused, Refusal.ATTESTATION_NOT_TRUSTED, "Bad attestation certificate.")
    # §7.1 steps 23-24: the attestation certificate chains to a configured root.
    try:
        _verifier(policy.roots, now).build_client_verifier().verify(leaf, intermediates)
    except (VerificationError, ValueError):
        refuse(
            AttestationRefused,
            Refusal.ATTESTATION_NOT_TRUSTED,
            "The authenticator's attestation does not chain to a trusted root.",
        )
    # §8.2.1 / §8.3.1: a certificate that names a model must name this authenticator's.
    certified = _certificate_aaguid(leaf) if fmt in _AAGUID_MUST_MATCH else None
    if certified is not None and certified != aaguid:
        refuse(
            AttestationRefused,
            Refusal.ATTESTATION_NOT_TRUSTED,
            "The attestation certificate is for another authenticator model.",
        )
    if policy.allowed_aaguids is not None and aaguid not in policy.allowed_aaguids:
        refuse(
            AttestationRefused,
            Refusal.AAGUID_NOT_ALLOWED,
            "This authenticator model is not on the organisation's list.",
        )
    return True
