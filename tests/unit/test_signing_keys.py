"""Signing keys: files, permissions, manifest, kid thumbprints, rotation and JWKS."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.errors import ConfigurationError, InvalidToken
from bastion.tokens.signing_keys import (
    MANIFEST_NAME,
    KeyRing,
    jwk_thumbprint,
    public_jwk,
    rotate_keys,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = 900
SKEW = 30


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "keys"


@pytest.fixture
def ring(key_dir: Path) -> KeyRing:
    return KeyRing.load_or_create(key_dir, now=T0)


# -- RFC vectors ---------------------------------------------------------------------------


def test_thumbprint_matches_rfc8037_appendix_a3() -> None:
    # RFC 8037 Appendix A.1 key; A.3 gives its RFC 7638 thumbprint.
    d = _b64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
    key = Ed25519PrivateKey.from_private_bytes(d)
    assert public_jwk(key.public_key()) == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }
    assert jwk_thumbprint(key.public_key()) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


# -- files ---------------------------------------------------------------------------------


def test_first_start_creates_directory_0700_and_key_file_0600(key_dir: Path) -> None:
    ring = KeyRing.load_or_create(key_dir, now=T0)
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    key_file = key_dir / f"{ring.active.kid}.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((key_dir / MANIFEST_NAME).stat().st_mode) == 0o600
    pem = key_file.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    loaded = serialization.load_pem_private_key(pem, None)
    assert isinstance(loaded, Ed25519PrivateKey)


def test_key_files_are_0600_even_with_a_permissive_umask(key_dir: Path) -> None:
    old = os.umask(0)
    try:
        ring = KeyRing.load_or_create(key_dir, now=T0)
        ring.rotate(now=T0)
    finally:
        os.umask(old)
    for path in key_dir.glob("*.pem"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700


def test_manifest_records_kid_and_times(ring: KeyRing, key_dir: Path) -> None:
    manifest = json.loads((key_dir / MANIFEST_NAME).read_text())
    assert manifest["keys"] == [
        {"kid": ring.active.kid, "created_at": T0.isoformat(), "retired_at": None}
    ]


def test_second_start_loads_the_same_key(ring: KeyRing, key_dir: Path) -> None:
    again = KeyRing.load_or_create(key_dir, now=T0 + timedelta(days=1))
    assert again.active.kid == ring.active.kid
    assert again.active.created_at == T0
    assert len(list(key_dir.glob("*.pem"))) == 1


def test_kid_is_the_rfc7638_thumbprint(ring: KeyRing) -> None:
    assert ring.active.kid == jwk_thumbprint(ring.active.public_key)
    assert len(ring.active.kid) == 43


def test_group_readable_key_file_is_refused_with_chmod_hint(ring: KeyRing, key_dir: Path) -> None:
    key_file = key_dir / f"{ring.active.kid}.pem"
    key_file.chmod(0o640)
    with pytest.raises(ConfigurationError) as caught:
        KeyRing.load_or_create(key_dir, now=T0)
    assert "chmod 600" in caught.value.detail


def test_world_readable_key_file_is_refused(ring: KeyRing, key_dir: Path) -> None:
    (key_dir / f"{ring.active.kid}.pem").chmod(0o604)
    with pytest.raises(ConfigurationError):
        KeyRing.load_or_create(key_dir, now=T0)


def test_symlinked_key_file_is_refused(ring: KeyRing, key_dir: Path, tmp_path: Path) -> None:
    key_file = key_dir / f"{ring.active.kid}.pem"
    elsewhere = tmp_path / "elsewhere.pem"
    key_file.rename(elsewhere)
    key_file.symlink_to(elsewhere)
    with pytest.raises(ConfigurationError):
        KeyRing.load_or_create(key_dir, now=T0)


def test_key_file_that_does_not_match_its_kid_is_refused(ring: KeyRing, key_dir: Path) -> None:
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = key_dir / f"{ring.active.kid}.pem"
    key_file.write_bytes(other)
    with pytest.raises(ConfigurationError):
        KeyRing.load_or_create(key_dir, now=T0)


def test_missing_key_file_is_refused(ring: KeyRing, key_dir: Path) -> None:
    (key_dir / f"{ring.active.kid}.pem").unlink()
    with pytest.raises(ConfigurationError):
        KeyRing.load_or_create(key_dir, now=T0)


def test_key_files_without_manifest_are_refused(ring: KeyRing, key_dir: Path) -> None:
    (key_dir / MANIFEST_NAME).unlink()
    with pytest.raises(ConfigurationError):
        KeyRing.load_or_create(key_dir, now=T0)


def test_manifest_with_path_like_kid_is_refused(ring: KeyRing, key_dir: Path) -> None:
    manifest = json.loads((key_dir / MANIFEST_NAME).read_text())
    manifest["keys"][0]["kid"] = "../../etc/passwd"
    (key_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ConfigurationError):
        KeyRing.load_or_create(key_dir, now=T0)


def test_naive_now_is_refused(key_dir: Path) -> None:
    with pytest.raises(ValueError, match="aware"):
        KeyRing.load_or_create(key_dir, now=datetime(2025, 1, 1))


def test_private_key_is_not_in_repr(ring: KeyRing) -> None:
    assert "private" not in repr(ring.active).lower()


# -- JWKS ----------------------------------------------------------------------------------


def test_jwks_publishes_only_public_okp_members(ring: KeyRing) -> None:
    jwks = ring.jwks(now=T0, max_token_ttl=TTL)
    assert jwks == {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": public_jwk(ring.active.public_key)["x"],
                "kid": ring.active.kid,
                "use": "sig",
                "alg": "EdDSA",
            }
        ]
    }
    assert len(_b64url_decode(jwks["keys"][0]["x"])) == 32


# -- rotation ------------------------------------------------------------------------------


def test_rotate_adds_an_active_key_and_keeps_the_previous_for_verification(
    ring: KeyRing, key_dir: Path
) -> None:
    old_kid = ring.active.kid
    rotated_at = T0 + timedelta(days=30)
    new_kid = ring.rotate(now=rotated_at)
    assert new_kid != old_kid
    assert ring.active.kid == new_kid
    assert [key.kid for key in ring.keys] == [old_kid, new_kid]
    assert ring.keys[0].retired_at == rotated_at
    # Both are published while a token of the old key may still be alive.
    kids = [jwk["kid"] for jwk in ring.jwks(now=rotated_at, max_token_ttl=TTL)["keys"]]
    assert kids == [new_kid, old_kid]
    ring.public_key(old_kid, now=rotated_at + timedelta(seconds=TTL))
    # The rotation is on disk.
    reloaded = KeyRing.load_or_create(key_dir, now=rotated_at)
    assert [key.kid for key in reloaded.keys] == [old_kid, new_kid]
    assert reloaded.keys[0].retired_at == rotated_at


def test_retired_key_ages_out_of_jwks_and_verification(ring: KeyRing) -> None:
    old_kid = ring.active.kid
    ring.rotate(now=T0)
    last_alive = T0 + timedelta(seconds=TTL + SKEW - 1)
    aged_out = T0 + timedelta(seconds=TTL + SKEW)
    assert len(ring.jwks(now=last_alive, max_token_ttl=TTL, skew=SKEW)["keys"]) == 2
    ring.public_key(old_kid, now=last_alive, max_token_ttl=TTL, skew=SKEW)
    assert [k["kid"] for k in ring.jwks(now=aged_out, max_token_ttl=TTL, skew=SKEW)["keys"]] == [
        ring.active.kid
    ]
    with pytest.raises(InvalidToken):
        ring.public_key(old_kid, now=aged_out, max_token_ttl=TTL, skew=SKEW)


def test_unknown_kid_is_refused(ring: KeyRing) -> None:
    with pytest.raises(InvalidToken):
        ring.public_key("A" * 43, now=T0)


def test_rotate_keys_for_the_cli(key_dir: Path) -> None:
    first = rotate_keys(key_dir, now=T0)  # empty directory: only creates the first key
    assert KeyRing.load_or_create(key_dir, now=T0).active.kid == first
    second = rotate_keys(key_dir, now=T0 + timedelta(days=1))
    ring = KeyRing.load_or_create(key_dir, now=T0)
    assert [key.kid for key in ring.keys] == [first, second]


def test_rotation_by_another_process_is_not_lost(ring: KeyRing, key_dir: Path) -> None:
    other_process = rotate_keys(key_dir, now=T0 + timedelta(hours=1))
    mine = ring.rotate(now=T0 + timedelta(hours=2))
    assert [key.kid for key in ring.keys][1:] == [other_process, mine]


# -- raw signatures (audit checkpoints) ----------------------------------------------------


def test_sign_and_verify_signature(ring: KeyRing) -> None:
    kid, signature = ring.sign(b"42:abcdef")
    assert kid == ring.active.kid
    assert len(signature) == 64
    ring.verify_signature(kid=kid, data=b"42:abcdef", signature=signature)
    with pytest.raises(InvalidToken):
        ring.verify_signature(kid=kid, data=b"43:abcdef", signature=signature)
    with pytest.raises(InvalidToken):
        ring.verify_signature(kid=kid, data=b"42:abcdef", signature=signature[:-1])
    with pytest.raises(InvalidToken):
        ring.verify_signature(kid="B" * 43, data=b"42:abcdef", signature=signature)


def test_old_checkpoint_signatures_verify_after_the_key_aged_out(ring: KeyRing) -> None:
    kid, signature = ring.sign(b"checkpoint")
    ring.rotate(now=T0)
    ring.rotate(now=T0 + timedelta(days=365))
    ring.verify_signature(kid=kid, data=b"checkpoint", signature=signature)
