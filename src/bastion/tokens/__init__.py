"""Tokens: signing keys and JWKS, access-token JWTs, the verified-token cache, opaque secrets."""

from bastion.tokens.access import (
    IssuedToken,
    VerifiedAccessToken,
    issue_access_token,
    verify_access_token,
)
from bastion.tokens.cache import VerifiedTokenCache
from bastion.tokens.opaque import NewSecret, SecretKind, hash_secret, hint, new_secret, parse_secret
from bastion.tokens.signing_keys import KeyRing, SigningKey, jwk_thumbprint, rotate_keys

__all__ = [
    "IssuedToken",
    "KeyRing",
    "NewSecret",
    "SecretKind",
    "SigningKey",
    "VerifiedAccessToken",
    "VerifiedTokenCache",
    "hash_secret",
    "hint",
    "issue_access_token",
    "jwk_thumbprint",
    "new_secret",
    "parse_secret",
    "rotate_keys",
    "verify_access_token",
]
