"""Ed25519 signing keys kept as files in ``<data_dir>/keys/`` (RFC 8037, RFC 7517, RFC 7638).

Layout of the directory (created with mode 0700 on first start)::

    keys/
      manifest.json        {"version": 1, "keys": [{"kid", "created_at", "retired_at"}, ...]}
      <kid>.pem            PKCS#8 PEM private key, mode 0600, created with O_CREAT|O_EXCL

The manifest is the authority: a ``.pem`` file it does not list is never used. The last
listed key is the active one (it signs); every earlier key is retired. A retired key keeps
verifying access tokens while a token it signed may still be alive
(``retired_at + max_token_ttl + skew > now``); after that it leaves the JWKS and refuses
token verification. Its file stays so that old audit checkpoints still verify.

The ``kid`` is the RFC 7638 JWK thumbprint of the public key, so a key file and its
manifest entry cannot silently disagree: loading recomputes it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from bastion.config import MAX_ACCESS_TOKEN_TTL
from bastion.errors import ConfigurationError, InvalidToken, UnknownSigningKey

__all__ = [
    "DEFAULT_SKEW",
    "MANIFEST_NAME",
    "KeyRing",
    "SigningKey",
    "jwk_thumbprint",
    "public_jwk",
    "rotate_keys",
]

MANIFEST_NAME = "manifest.json"
DEFAULT_SKEW = 30
_LOCK_NAME = ".lock"
_MANIFEST_VERSION = 1
# base64url of a SHA-256 digest: 43 characters, no padding. Also keeps kids path-safe.
_KID_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_ED25519_SIGNATURE_LEN = 64


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware UTC datetime")
    return moment


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 §2 members of an Ed25519 public key (no ``kid``/``use``/``alg``)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace."""
    members = public_jwk(public_key)
    canonical = json.dumps(
        {"crv": members["crv"], "kty": members["kty"], "x": members["x"]},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring. The private half never appears in ``repr``."""

    kid: str
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    created_at: datetime
    retired_at: datetime | None = None
    # Derived once: deriving it from the private key costs a scalar multiplication per call.
    public_key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", self.private_key.public_key())

    def jwk(self) -> dict[str, str]:
        """The public JWK as published in the JWKS (RFC 7517 §4, RFC 8037 §2)."""
        return {**public_jwk(self.public_key), "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    def verifies_tokens_at(self, now: datetime, *, max_token_ttl: int, skew: int) -> bool:
        """Whether a token this key signed may still be alive at ``now``."""
        if self.retired_at is None:
            return True
        return self.retired_at + timedelta(seconds=max_token_ttl + skew) > now


class KeyRing:
    """The signing keys: one active (newest), plus retired ones kept for verification.

    Build it with :meth:`load_or_create`. Reads no clock: every time-dependent call
    takes ``now``.
    """

    def __init__(self, directory: Path | None, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ConfigurationError("a key ring needs at least one signing key")
        self._directory = directory
        self._keys: tuple[SigningKey, ...] = tuple(keys)
        self._by_kid: dict[str, SigningKey] = {key.kid: key for key in self._keys}

    # -- construction -------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, directory: Path, *, now: datetime) -> KeyRing:
        """Load the keys in ``directory``; on first start create it (0700) and a first key."""
        _aware(now, "now")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(directory):
            keys = _load_keys(directory)
            if keys is None:
                first = _new_key(directory, now=now)
                _write_manifest(directory, [first])
                keys = [first]
        return cls(directory, keys)

    # -- queries --------------------------------------------------------------------------

    @property
    def directory(self) -> Path | None:
        """The key folder; None for keys kept in the database (``identity.key_table``)."""
        return self._directory

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every key, oldest first; the last one is active."""
        return self._keys

    @property
    def active(self) -> SigningKey:
        """The key that signs new tokens and checkpoints (the newest)."""
        return self._keys[-1]

    def jwks(
        self, *, now: datetime, max_token_ttl: int = MAX_ACCESS_TOKEN_TTL, skew: int = DEFAULT_SKEW
    ) -> dict[str, list[dict[str, str]]]:
        """RFC 7517 §5 key set: the active key plus retired keys whose tokens may still live."""
        _aware(now, "now")
        live = [
            key.jwk()
            for key in reversed(self._keys)
            if key.verifies_tokens_at(now, max_token_ttl=max_token_ttl, skew=skew)
        ]
        return {"keys": live}

    def public_key(
        self,
        kid: str,
        *,
        now: datetime,
        max_token_ttl: int = MAX_ACCESS_TOKEN_TTL,
        skew: int = DEFAULT_SKEW,
    ) -> Ed25519PublicKey:
        """The key that verifies tokens carrying ``kid``; unknown or aged-out kids fail."""
        _aware(now, "now")
        key = self._by_kid.get(kid)
        if key is None:
            raise UnknownSigningKey("The token was signed by an unknown key.")
        if not key.verifies_tokens_at(now, max_token_ttl=max_token_ttl, skew=skew):
            raise InvalidToken("The token was signed by a retired key.")
        return key.public_key

    # -- raw signatures (audit checkpoints) -------------------------------------------------

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """Sign ``data`` with the active key; returns ``(kid, signature)``."""
        key = self.active
        return key.kid, key.private_key.sign(data)

    def verify_signature(self, *, kid: str, data: bytes, signature: bytes) -> None:
        """Check a signature made by :meth:`sign` with any key of the ring, retired or not.

        Audit checkpoints outlive access tokens, so retirement does not matter here.
        """
        key = self._by_kid.get(kid)
        if key is None:
            raise InvalidToken("The signature names an unknown key.")
        if len(signature) != _ED25519_SIGNATURE_LEN:
            raise InvalidToken("The signature is malformed.")
        try:
            key.public_key.verify(signature, data)
        except InvalidSignature:
            raise InvalidToken("The signature does not match.") from None

    # -- rotation -------------------------------------------------------------------------

    def rotate(self, *, now: datetime) -> str:
        """Add a new active key; the previous one is retired at ``now`` and keeps verifying.

        Returns the new ``kid``.
        """
        _aware(now, "now")
        if self._directory is None:
            raise ConfigurationError("keys kept in the database rotate with key_table.rotate")
        with _locked(self._directory):
            # Re-read so a rotation made by another process is not lost.
            current = _load_keys(self._directory) or list(self._keys)
            retired = [key if key.retired_at is not None else _retire(key, now) for key in current]
            new = _new_key(self._directory, now=now)
            keys = [*retired, new]
            _write_manifest(self._directory, keys)
        self._keys = tuple(keys)
        self._by_kid = {key.kid: key for key in self._keys}
        return new.kid


def rotate_keys(directory: Path, *, now: datetime) -> str:
    """CLI helper (server stopped): rotate the keys in ``directory``; returns the new kid.

    On a directory without keys this only creates the first key.
    """
    _aware(now, "now")
    if not (directory / MANIFEST_NAME).exists():
        return KeyRing.load_or_create(directory, now=now).active.kid
    return KeyRing.load_or_create(directory, now=now).rotate(now=now)


# -- files ---------------------------------------------------------------------------------


def _retire(key: SigningKey, now: datetime) -> SigningKey:
    return SigningKey(
        kid=key.kid, private_key=key.private_key, created_at=key.created_at, retired_at=now
    )


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An advisory lock so two processes never create or rotate keys at the same time."""
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600; fail if anything already exists there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_key(directory: Path, *, now: datetime) -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    kid = jwk_thumbprint(private_key.public_key())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new_file(directory / f"{kid}.pem", pem)
    return SigningKey(kid=kid, private_key=private_key, created_at=now)


def _write_manifest(directory: Path, keys: Sequence[SigningKey]) -> None:
    """Replace the manifest atomically (write a 0600 temp file, fsync, rename)."""
    document = {
        "version": _MANIFEST_VERSION,
        "keys": [
            {
                "kid": key.kid,
                "created_at": key.created_at.isoformat(),
                "retired_at": key.retired_at.isoformat() if key.retired_at else None,
            }
            for key in keys
        ],
    }
    temp = directory / f".{MANIFEST_NAME}.{secrets.token_hex(8)}.tmp"
    _write_new_file(temp, json.dumps(document, indent=2).encode("utf-8") + b"\n")
    os.replace(temp, directory / MANIFEST_NAME)
    _fsync_dir(directory)


def _read_private_file(path: Path) -> bytes:
    """Read a key file, refusing symlinks, non-regular files and group/other permissions."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigurationError(
            f"signing key file {path} is listed in {MANIFEST_NAME} but missing"
        ) from None
    except OSError:
        raise ConfigurationError(
            f"signing key file {path} cannot be opened (a symlink or unreadable?)"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"signing key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigurationError(
                f"signing key file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
            )
        return handle.read()


def _parse_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise ConfigurationError(f"{MANIFEST_NAME}: {what} is not a timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(f"{MANIFEST_NAME}: {what} is not a timestamp") from None
    if moment.tzinfo is None:
        raise ConfigurationError(f"{MANIFEST_NAME}: {what} has no time zone")
    return moment


def _load_keys(directory: Path) -> list[SigningKey] | None:
    """The keys listed in the manifest, or None when the directory holds no keys yet."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.exists():
        if any(directory.glob("*.pem")):
            raise ConfigurationError(
                f"{directory} holds key files but no {MANIFEST_NAME}; restore the manifest "
                "or move the .pem files away to start with a new key"
            )
        return None
    try:
        document = json.loads(manifest_path.read_bytes())
    except (OSError, ValueError):
        raise ConfigurationError(f"{manifest_path} is unreadable or not JSON") from None
    if not isinstance(document, dict) or document.get("version") != _MANIFEST_VERSION:
        raise ConfigurationError(f"{manifest_path} has an unknown format")
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{manifest_path} lists no keys")

    keys: list[SigningKey] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{manifest_path}: entry {index} is not an object")
        kid = entry.get("kid")
        if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
            raise ConfigurationError(f"{manifest_path}: entry {index} has a malformed kid")
        created_at = _parse_time(entry.get("created_at"), f"created_at of {kid}")
        raw_retired = entry.get("retired_at")
        retired_at = (
            None if raw_retired is None else _parse_time(raw_retired, f"retired_at of {kid}")
        )
        is_last = index == len(entries) - 1
        if is_last != (retired_at is None):
            raise ConfigurationError(
                f"{manifest_path}: exactly the last key must be active (not retired)"
            )
        path = directory / f"{kid}.pem"
        try:
            private_key = serialization.load_pem_private_key(_read_private_file(path), None)
        except (ValueError, TypeError):
            raise ConfigurationError(f"{path} is not an unencrypted PKCS#8 PEM key") from None
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ConfigurationError(f"{path} is not an Ed25519 key")
        if jwk_thumbprint(private_key.public_key()) != kid:
            raise ConfigurationError(f"{path} does not match its kid in {MANIFEST_NAME}")
        keys.append(
            SigningKey(
                kid=kid, private_key=private_key, created_at=created_at, retired_at=retired_at
            )
        )
    if len({key.kid for key in keys}) != len(keys):
        raise ConfigurationError(f"{manifest_path} lists a kid twice")
    return keys
