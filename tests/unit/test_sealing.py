"""Sealing of secrets at rest: master key file handling and AES-GCM blobs."""

from __future__ import annotations

import base64
import hmac
import os
import pickle
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bastion.errors import ConfigurationError
from bastion.sealing import (
    KEY_BYTES,
    Sealer,
    SealError,
    load_or_create_master_key,
    master_key_from_file,
    master_key_from_setting,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
KEY = bytes(range(32))
CONTEXT = b"totp:fct_123"


# --- Sealer -------------------------------------------------------------------------------


def test_seal_unseal_round_trip() -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"JBSWY3DPEHPK3PXP", context=CONTEXT)
    assert sealer.unseal(blob, context=CONTEXT) == b"JBSWY3DPEHPK3PXP"


def test_blob_layout_is_version_nonce_ciphertext_tag() -> None:
    blob = Sealer(KEY).seal(b"x" * 20, context=CONTEXT)
    assert blob[0] == 1
    assert len(blob) == 1 + 12 + 20 + 16
    assert b"x" * 20 not in blob


def test_each_seal_uses_a_fresh_nonce() -> None:
    sealer = Sealer(KEY)
    blobs = {sealer.seal(b"same", context=CONTEXT) for _ in range(50)}
    assert len(blobs) == 50
    assert len({b[1:13] for b in blobs}) == 50


def test_unseal_accepts_memoryview() -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"secret", context=CONTEXT)
    assert sealer.unseal(memoryview(blob), context=CONTEXT) == b"secret"  # type: ignore[arg-type]


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_unseal_rejects_a_flipped_bit(position: int) -> None:
    sealer = Sealer(KEY)
    blob = bytearray(sealer.seal(b"secret seed", context=CONTEXT))
    blob[position] ^= 0x01
    with pytest.raises(SealError):
        sealer.unseal(bytes(blob), context=CONTEXT)


def test_unseal_rejects_wrong_context() -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"secret", context=b"totp:fct_1")
    with pytest.raises(SealError):
        sealer.unseal(blob, context=b"totp:fct_2")


def test_unseal_rejects_wrong_key() -> None:
    blob = Sealer(KEY).seal(b"secret", context=CONTEXT)
    with pytest.raises(SealError):
        Sealer(bytes(32)).unseal(blob, context=CONTEXT)


@pytest.mark.parametrize("length", [0, 1, 13, 28])
def test_unseal_rejects_truncated_blob(length: int) -> None:
    blob = Sealer(KEY).seal(b"", context=CONTEXT)
    assert len(blob) == 29
    with pytest.raises(SealError):
        Sealer(KEY).unseal(blob[:length], context=CONTEXT)


def test_seal_error_is_a_server_fault_with_stable_code() -> None:
    with pytest.raises(SealError) as info:
        Sealer(KEY).unseal(b"\x01" + bytes(40), context=CONTEXT)
    assert info.value.status == 500
    assert info.value.code == "sealed_secret_unreadable"
    assert not isinstance(info.value, ConfigurationError)


def test_fingerprint_is_hmac_sha256_under_an_hkdf_subkey() -> None:
    # RFC 5869 HKDF-SHA256 (no salt, info names the use), then RFC 2104 HMAC-SHA256 over
    # len(aad) || aad || data, where aad = version || context.
    subkey = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"bastion fingerprint v1"
    ).derive(KEY)
    aad = b"\x01" + CONTEXT
    expected = hmac.new(subkey, len(aad).to_bytes(2, "big") + aad + b"alice", "sha256")
    assert Sealer(KEY).fingerprint(b"alice", context=CONTEXT) == expected.hexdigest()


def test_fingerprint_depends_on_key_context_and_data() -> None:
    mine = Sealer(KEY).fingerprint(b"alice", context=CONTEXT)
    assert mine == Sealer(KEY).fingerprint(b"alice", context=CONTEXT)
    assert mine != Sealer(bytes(32)).fingerprint(b"alice", context=CONTEXT)
    assert mine != Sealer(KEY).fingerprint(b"alice", context=b"totp:fct_124")
    assert mine != Sealer(KEY).fingerprint(b"alicf", context=CONTEXT)
    # Where the context ends and the data starts is never ambiguous.
    assert Sealer(KEY).fingerprint(b"c", context=b"ab") != Sealer(KEY).fingerprint(
        b"bc", context=b"a"
    )


def test_empty_context_is_refused() -> None:
    with pytest.raises(ValueError, match="context"):
        Sealer(KEY).seal(b"secret", context=b"")


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(31), bytes(33)])
def test_sealer_refuses_wrong_key_length(key: bytes) -> None:
    with pytest.raises(ConfigurationError):
        Sealer(key)


def test_repr_and_pickle_do_not_expose_the_key() -> None:
    sealer = Sealer(KEY)
    text = repr(sealer) + str(sealer)
    assert "redacted" in text
    assert KEY.hex() not in text
    assert repr(KEY) not in text
    with pytest.raises(TypeError):
        pickle.dumps(sealer)


# --- master key file --------------------------------------------------------------------


@posix_only
def test_key_file_created_with_0600_and_32_bytes(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = load_or_create_master_key(path)
    assert len(key) == KEY_BYTES
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@posix_only
def test_key_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_master_key(tmp_path / "master.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_key_file_is_reused_on_next_start(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    assert load_or_create_master_key(path) == load_or_create_master_key(path)


def test_key_file_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "master.key"
    assert len(load_or_create_master_key(path)) == KEY_BYTES


def test_concurrent_first_start_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(load_or_create_master_key(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert set(results) == {path.read_bytes()}
    assert list(tmp_path.iterdir()) == [path]


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    load_or_create_master_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_or_create_master_key(path)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 44])
def test_key_file_of_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"k" * size)
    os.close(fd)
    with pytest.raises(ConfigurationError, match="exactly 32 bytes"):
        load_or_create_master_key(path)


def test_key_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.mkdir(mode=0o700)
    with pytest.raises(ConfigurationError):
        load_or_create_master_key(path)


# --- master key from settings -------------------------------------------------------------


def test_master_key_from_standard_base64() -> None:
    assert master_key_from_setting(base64.b64encode(KEY).decode()) == KEY


def test_master_key_from_urlsafe_unpadded_base64() -> None:
    key = b"\xff" * 32
    text = base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert "_" in text or "-" in text
    assert master_key_from_setting(f"  {text}\n") == key


@pytest.mark.parametrize("value", ["", "not base64!!", "%%%%"])
def test_master_key_setting_that_is_not_base64_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError):
        master_key_from_setting(value)


def test_master_key_setting_of_wrong_length_is_refused_without_echo() -> None:
    value = base64.b64encode(b"s" * 16).decode()
    with pytest.raises(ConfigurationError) as info:
        master_key_from_setting(value)
    assert value not in info.value.detail
    assert "32 bytes" in info.value.detail


def _private_file(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_master_key_file_holds_raw_bytes_or_their_base64(tmp_path: Path) -> None:
    key = os.urandom(KEY_BYTES)
    raw = _private_file(tmp_path / "raw", key)
    text = _private_file(tmp_path / "b64", base64.b64encode(key) + b"\n")
    assert master_key_from_file(raw) == key
    assert master_key_from_file(text) == key


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    shared = _private_file(tmp_path / "key", os.urandom(KEY_BYTES), mode=0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        master_key_from_file(shared)


@pytest.mark.parametrize("data", [b"short", b"x" * 33, b"\xff" * 44])
def test_master_key_file_of_another_size_is_refused(tmp_path: Path, data: bytes) -> None:
    bad = _private_file(tmp_path / "key", data)
    with pytest.raises(ConfigurationError, match="raw bytes or their base64"):
        master_key_from_file(bad)


def test_master_key_file_is_never_created(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        master_key_from_file(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
