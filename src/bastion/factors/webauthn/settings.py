"""The relying party and attestation policy from ``BASTION_WEBAUTHN_*`` settings.

Called once at start (the root certificates file is read here, not in a ceremony); a bad
file stops the server with a ``ConfigurationError`` that names the setting.
"""

from __future__ import annotations

from cryptography import x509

from bastion.config import Settings
from bastion.errors import ConfigurationError
from bastion.factors.webauthn.model import AttestationPolicy, RelyingParty

__all__ = ["attestation_policy_from_settings", "relying_party_from_settings"]


def relying_party_from_settings(settings: Settings) -> RelyingParty:
    """Raises ``ConfigurationError`` when no RP ID can be derived (an IP-address public URL)."""
    rp_id = settings.resolved_webauthn_rp_id
    if rp_id is None:
        raise ConfigurationError(
            "WebAuthn needs a domain name: browsers refuse it on IP-address origins. Set "
            "BASTION_PUBLIC_URL to e.g. http://localhost:6333 (or BASTION_WEBAUTHN_RP_ID "
            "and BASTION_WEBAUTHN_ORIGINS)."
        )
    return RelyingParty(
        id=rp_id, name=settings.webauthn_rp_name, origins=settings.resolved_webauthn_origins
    )


def attestation_policy_from_settings(settings: Settings) -> AttestationPolicy:
    roots: tuple[x509.Certificate, ...] = ()
    path = settings.webauthn_attestation_roots
    if path is not None:
        try:
            roots = tuple(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError):
            raise ConfigurationError(
                f"BASTION_WEBAUTHN_ATTESTATION_ROOTS: {path} is not a readable PEM file "
                "of certificates."
            ) from None
    return AttestationPolicy(
        conveyance=settings.webauthn_attestation,
        roots=roots,
        allowed_aaguids=frozenset(settings.webauthn_allowed_aaguids) or None,
    )
