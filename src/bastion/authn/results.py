"""What the sign-in ceremonies answer, as types; ``api.auth`` renders them on the wire."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.authn.sessions import IssuedTokens


@dataclass(frozen=True)
class MfaRequired:
    """A password (or a first factor) was accepted; one of ``methods`` must follow within
    ``expires_in`` seconds, on the transaction ``transaction_id``."""

    transaction_id: str
    expires_in: int
    methods: tuple[str, ...]
    # The risk engine's coarse level of a sign-in ("low", "medium", "high"); None for a
    # step-up (scored, but its answer carries no level).
    risk_level: str | None = None
    # Enrolled methods this server cannot run (WebAuthn without a relying party: an
    # IP-address public URL); never in ``methods`` (``authn.security_keys.UNAVAILABLE``).
    unavailable: tuple[str, ...] = ()


# Tokens (a restricted enrolment session among them), or the next step.
LoginResult = IssuedTokens | MfaRequired

__all__ = ["IssuedTokens", "LoginResult", "MfaRequired"]
