"""Shared by the audit tests: an Ed25519 signer and verifier standing in for the token key
ring, and a migrated audit database with one tenant."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert

from bastion.storage import Database
from bastion.storage.schema import tenants

KEY = Ed25519PrivateKey.generate()


def sign(data: bytes) -> tuple[str, bytes]:
    return "kid-1", KEY.sign(data)


def verifier(kid: str, data: bytes, signature: bytes) -> None:
    if kid != "kid-1":
        raise LookupError("unknown kid")
    KEY.public_key().verify(signature, data)


def audit_database(path: Path, *, created_at: datetime) -> Database:
    """A fresh SQLite database at ``path``, migrated, with tenant ``tnt_a`` (dispose it)."""
    database = Database("sqlite:///" + str(path))
    database.migrate()
    with database.begin() as conn:
        conn.execute(insert(tenants).values(id="tnt_a", name="default", created_at=created_at))
    return database
