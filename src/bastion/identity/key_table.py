"""Signing keys kept in the database (PostgreSQL replicas): one ring for every replica.

The same keys as ``signing_keys`` (Ed25519, ``kid`` = RFC 7638 thumbprint, the last one
active), stored in the ``signing_keys`` table instead of a folder, so that a key made or
rotated by one replica signs and verifies on every other. Each private key is sealed with
the master key (``Sealer``, AES-256-GCM bound to ``signing-key:<kid>``): a copy of the
database alone holds no usable key, and a replica given another master key cannot read
them and refuses to start, naming the setting to fix.

The first key is made under the start-up lock (``Database.startup_lock``); a rotation
takes a transaction advisory lock of its own, so two rotations at once (two replicas, or
the command line and a replica) are made one after the other.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, func, insert, select, text, update

from bastion.errors import ConfigurationError
from bastion.sealing import Sealer, SealError
from bastion.storage.schema import signing_keys
from bastion.tokens.signing_keys import KeyRing, SigningKey, jwk_thumbprint

__all__ = ["WRONG_MASTER_KEY", "import_ring", "load_or_create", "read_ring", "rotate", "stamp"]

# pg_advisory_xact_lock key of a rotation ("bastion:keys" folded into 63 bits).
ROTATION_LOCK_KEY = 0x62617374696F6E4B
WRONG_MASTER_KEY = (
    "the master key does not unseal the signing keys stored in the database: every "
    "replica of one database needs the same master key (BASTION_MASTER_KEY or "
    "BASTION_MASTER_KEY_FILE, as given to the first replica)"
)


def _context(kid: str) -> bytes:
    return b"signing-key:" + kid.encode("ascii")


def stamp(conn: Connection) -> tuple[int, int]:
    """What changes with every rotation: (number of keys, newest position)."""
    row = conn.execute(
        select(func.count(), func.coalesce(func.max(signing_keys.c.position), 0))
    ).one()
    return int(row[0]), int(row[1])


def read_ring(conn: Connection, sealer: Sealer) -> KeyRing | None:
    """The keys in the table, oldest first; None when there are none yet."""
    rows = conn.execute(select(signing_keys).order_by(signing_keys.c.position)).all()
    if not rows:
        return None
    keys: list[SigningKey] = []
    for index, row in enumerate(rows):
        try:
            der = sealer.unseal(row.sealed_private_key, context=_context(row.kid))
        except SealError:
            raise ConfigurationError(WRONG_MASTER_KEY) from None
        private_key = serialization.load_der_private_key(der, None)
        if not isinstance(private_key, Ed25519PrivateKey) or (
            jwk_thumbprint(private_key.public_key()) != row.kid
        ):
            raise ConfigurationError(f"the signing key {row.kid} in the database is not its kid")
        if (index == len(rows) - 1) != (row.retired_at is None):
            raise ConfigurationError("signing_keys: exactly the last key must be active")
        keys.append(
            SigningKey(
                kid=row.kid,
                private_key=private_key,
                created_at=row.created_at,
                retired_at=row.retired_at,
            )
        )
    return KeyRing(None, keys)


def load_or_create(conn: Connection, sealer: Sealer, *, now: datetime) -> KeyRing:
    """The ring; on an empty table, a first key (call under ``Database.startup_lock``)."""
    ring = read_ring(conn, sealer)
    if ring is not None:
        return ring
    first = _insert_new(conn, sealer, position=1, now=now)
    return KeyRing(None, [first])


def rotate(conn: Connection, sealer: Sealer, *, now: datetime) -> str:
    """Retire the active key at ``now`` and add a new active one; the new kid."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROTATION_LOCK_KEY})
    rows = conn.execute(
        select(signing_keys.c.position, signing_keys.c.retired_at).order_by(signing_keys.c.position)
    ).all()
    read_ring(conn, sealer)  # refuse to add a key under another master key
    active: list[int] = [row.position for row in rows if row.retired_at is None]
    if active:
        conn.execute(
            update(signing_keys).where(signing_keys.c.position.in_(active)).values(retired_at=now)
        )
    position = (rows[-1].position if rows else 0) + 1
    return _insert_new(conn, sealer, position=position, now=now).kid


def import_ring(conn: Connection, sealer: Sealer, ring: KeyRing) -> None:
    """Store every key of ``ring`` (the files of an embedded installation), in order, into
    an empty table: checkpoints they signed keep verifying, tokens they signed stay valid."""
    for position, key in enumerate(ring.keys, start=1):
        der = key.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        conn.execute(
            insert(signing_keys).values(
                position=position,
                kid=key.kid,
                sealed_private_key=sealer.seal(der, context=_context(key.kid)),
                created_at=key.created_at,
                retired_at=key.retired_at,
            )
        )


def _insert_new(conn: Connection, sealer: Sealer, *, position: int, now: datetime) -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    kid = jwk_thumbprint(private_key.public_key())
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    conn.execute(
        insert(signing_keys).values(
            position=position,
            kid=kid,
            sealed_private_key=sealer.seal(der, context=_context(kid)),
            created_at=now,
            retired_at=None,
        )
    )
    return SigningKey(kid=kid, private_key=private_key, created_at=now)
