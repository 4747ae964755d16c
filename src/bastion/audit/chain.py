"""The hash chain (pure): canonical JSON and the SHA-256 link of each event.

Each event's ``hash`` is SHA-256 over the canonical JSON of its record (position
``seq``, ``id``, ``at``, who, what, outcome, details) together with the previous
event's hash, so editing, deleting, inserting or reordering a row breaks a link.
Canonical JSON: keys sorted, no whitespace, UTF-8 (not ASCII-escaped), no NaN,
datetimes as RFC 3339 UTC with microseconds (``2026-01-02T03:04:05.000006Z``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1  # bump (and keep the old rule in verify) if the record ever changes

RECORD_FIELDS: tuple[str, ...] = (
    "seq",
    "id",
    "at",
    "tenant_id",
    "actor",
    "action",
    "outcome",
    "resource",
    "reason",
    "details",
)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339, UTC, always with microseconds and ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: audit timestamps are aware UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return format_timestamp(value)
    raise TypeError(f"{type(value).__name__} is not part of an audit record")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    ).encode("utf-8")


def chain_record(
    *,
    seq: int,
    id: str,
    at: datetime,
    tenant_id: str | None,
    actor: str | None,
    action: str,
    outcome: str,
    resource: str | None,
    reason: str | None,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """The hashed fields of one event, in the shape ``link_hash`` expects."""
    return {
        "seq": seq,
        "id": id,
        "at": format_timestamp(at),
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "resource": resource,
        "reason": reason,
        "details": dict(details),
    }


def link_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``record`` linked to ``prev_hash``."""
    if set(record) != set(RECORD_FIELDS):
        raise ValueError("an audit record has exactly the fields of RECORD_FIELDS")
    body = {"v": CHAIN_VERSION, "prev_hash": prev_hash, **record}
    return hashlib.sha256(canonical_json(body)).hexdigest()


# -- signed checkpoints ---------------------------------------------------------------

CHECKPOINT_CONTEXT = b"bastion-audit-checkpoint:"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at ``seq`` (its ``hash``) signed with the server key ``kid``."""

    seq: int
    hash: str
    at: datetime
    kid: str
    signature: bytes


def checkpoint_message(seq: int, hash_hex: str) -> bytes:
    """What a checkpoint signs: ``bastion-audit-checkpoint:<seq>:<hash>`` (domain-separated)."""
    return CHECKPOINT_CONTEXT + f"{seq}:{hash_hex}".encode("ascii")


def encode_signature(signature: bytes) -> str:
    """base64url without padding, as stored in ``audit_checkpoints.signature``."""
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")


def decode_signature(text: str) -> bytes:
    """The inverse of ``encode_signature``; ``ValueError`` when it is not base64url."""
    if not _BASE64URL.fullmatch(text):
        raise ValueError("malformed checkpoint signature")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("malformed checkpoint signature") from exc
