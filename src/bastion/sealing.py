"""Secrets at rest: the master key and AES-256-GCM sealing of stored secrets (TOTP seeds).

The same key, through HKDF, also makes keyed fingerprints (HMAC-SHA256) of values that are
stored only to be looked up again, such as the username of a failed sign-in: a database
copy alone cannot brute-force them back.

A sealed blob is ``version (1 byte) || nonce (12 bytes) || ciphertext+tag``. The caller's
``context`` (e.g. ``b"totp:" + factor_id``) is bound as associated data, so a blob copied
onto another row or another purpose does not unseal.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bastion.errors import BastionError, ConfigurationError

__all__ = [
    "KEY_BYTES",
    "SealError",
    "Sealer",
    "load_or_create_master_key",
    "master_key_from_file",
    "master_key_from_setting",
]

KEY_BYTES = 32  # AES-256
_VERSION = b"\x01"
_NONCE_BYTES = 12  # 96-bit random nonce (NIST SP 800-38D §8.2.2)
_TAG_BYTES = 16
_FINGERPRINT_INFO = b"bastion fingerprint v1"  # HKDF info (RFC 5869 §3.2): one subkey, one use


class SealError(BastionError):
    """A sealed secret failed authentication (tampered, wrong key, wrong context)."""

    status = 500
    code = "sealed_secret_unreadable"
    title = "A stored secret could not be read"


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ConfigurationError(f"The master key must be exactly {KEY_BYTES} bytes.")
    return key


def _read_private(path: Path, limit: int) -> bytes:
    """Up to ``limit`` bytes of a regular file that group and others may not read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigurationError(
            f"The master key file {path} cannot be read ({exc.strerror})."
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"The master key file {path} is not a regular file.")
        if os.name == "posix" and info.st_mode & 0o077:
            raise ConfigurationError(
                f"The master key file {path} is readable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`."
            )
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _read_key_file(path: Path) -> bytes:
    data = _read_private(path, KEY_BYTES + 1)
    if len(data) != KEY_BYTES:
        raise ConfigurationError(
            f"The master key file {path} must hold exactly {KEY_BYTES} bytes; "
            "restore it from backup (a new key cannot unseal existing secrets)."
        )
    return data


def master_key_from_file(path: Path) -> bytes:
    """``BASTION_MASTER_KEY_FILE``: the same key for every replica, from a file the operator
    provides (a secret mounted by the orchestrator): 32 raw bytes (a data folder's
    ``master.key``) or their base64 (``openssl rand -base64 32``). Never created here."""
    data = _read_private(Path(path), 256)
    if len(data) == KEY_BYTES:
        return data
    try:
        return master_key_from_setting(data.decode("ascii"))
    except (UnicodeDecodeError, ConfigurationError):
        raise ConfigurationError(
            f"The master key file {path} must hold {KEY_BYTES} raw bytes or their base64 "
            "(generate one with `openssl rand -base64 32`)."
        ) from None


def load_or_create_master_key(path: Path) -> bytes:
    """Return the 32-byte master key stored at ``path``, creating it (mode 0600) on first run.

    Creation is atomic: the key is written to a private temporary file opened with
    ``O_CREAT | O_EXCL`` and mode 0600, then hard-linked into place, which fails if
    another process won the race (then its key is used). A key file readable by
    group or others, or of the wrong length, is refused with ``ConfigurationError``.
    """
    path = Path(path)
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create the master key file in {path.parent} ({exc.strerror})."
        ) from None
    try:
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # lost the race: use the winner's key
            os.link(tmp, path)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create the master key file {path} ({exc.strerror})."
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return _read_key_file(path)


def master_key_from_setting(b64: str) -> bytes:
    """Decode ``BASTION_MASTER_KEY`` (standard or URL-safe base64 of 32 bytes)."""
    text = b64.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "BASTION_MASTER_KEY is not valid base64; generate one with `openssl rand -base64 32`."
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"BASTION_MASTER_KEY must decode to exactly {KEY_BYTES} bytes (got {len(key)})."
        )
    return key


class Sealer:
    """AES-256-GCM with a random 96-bit nonce per seal; the key never appears in ``repr``."""

    __slots__ = ("_aead", "_fingerprint_key")

    def __init__(self, key: bytes) -> None:
        key = _check_key(key)
        self._aead = AESGCM(key)
        self._fingerprint_key = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_FINGERPRINT_INFO
        ).derive(key)

    def __repr__(self) -> str:
        return "Sealer(key=<redacted>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Sealer holds a secret key and cannot be pickled")

    @staticmethod
    def _aad(context: bytes) -> bytes:
        if not isinstance(context, bytes) or not context:
            raise ValueError("context must be non-empty bytes naming what is sealed")
        return _VERSION + context

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``context``; a fresh random nonce every call."""
        aad = self._aad(context)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def fingerprint(self, data: bytes, *, context: bytes) -> str:
        """HMAC-SHA256 (hex) of ``data`` bound to ``context``, under a subkey of the master key.

        Deterministic, so a stored fingerprint can be looked up; without the master key it
        says nothing about ``data``.
        """
        aad = self._aad(context)
        message = len(aad).to_bytes(2, "big") + aad + data
        return hmac.new(self._fingerprint_key, message, hashlib.sha256).hexdigest()

    def unseal(self, blob: bytes, *, context: bytes) -> bytes:
        """Decrypt a blob made by :meth:`seal` with the same ``context``, or raise ``SealError``."""
        aad = self._aad(context)
        blob = bytes(blob)
        if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise SealError("The sealed secret is truncated.")
        if blob[:1] != _VERSION:
            raise SealError("The sealed secret has an unknown format version.")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_BYTES :], aad)
        except InvalidTag:
            raise SealError(
                "The sealed secret failed authentication (tampered, wrong key or wrong context)."
            ) from None
