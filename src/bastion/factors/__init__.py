"""Authenticator verifiers: one module per method, and the catalog of their properties."""

from bastion.factors.catalog import CATALOG, Category, Method, MethodProperties, Rating
from bastion.factors.password import (
    BLOCKLIST_SOURCE,
    VerifiedPassword,
    burn_dummy_verify,
    check_new_password,
    hash_password,
    make_hasher,
    verify_password,
)
from bastion.factors.recovery import (
    VerifiedRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
    normalize_recovery_code,
    verify_recovery_code,
)
from bastion.factors.totp import (
    VerifiedTotp,
    hotp,
    new_totp_secret,
    provisioning_uri,
    qr_svg,
    totp_code,
    verify_totp,
)

__all__ = [
    "BLOCKLIST_SOURCE",
    "CATALOG",
    "Category",
    "Method",
    "MethodProperties",
    "Rating",
    "VerifiedPassword",
    "VerifiedRecoveryCode",
    "VerifiedTotp",
    "burn_dummy_verify",
    "check_new_password",
    "generate_recovery_codes",
    "hash_password",
    "hash_recovery_code",
    "hotp",
    "make_hasher",
    "new_totp_secret",
    "normalize_recovery_code",
    "provisioning_uri",
    "qr_svg",
    "totp_code",
    "verify_password",
    "verify_recovery_code",
    "verify_totp",
]
