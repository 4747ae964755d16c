"""Exported checkpoints: the record each sink receives, and reading them back (pure).

A checkpoint kept only in the database vouches for nothing against someone who can
write the data folder: they can rewrite the chain and sign the forged head with the
key beside it. A copy sent out of the folder when it was made (``audit.sink``) is the
anchor: ``bastion audit verify --against FILE`` trusts those copies, not the database's.

One record per line (JSON Lines), compact, ``type`` first (so even a line cut short
is recognised as a damaged record)::

    {"type":"bastion.audit.checkpoint","v":1,"chain":"<hash of event 1>","seq":42,
     "hash":"<hash of event 42>","at":"2026-12-01T10:05:00.000000Z","kid":"<signing key>",
     "signature":"<base64url Ed25519 over bastion-audit-checkpoint:42:<hash>>"}

``chain`` names the chain (the hash of its first event), so the checkpoints of two
installations sharing a syslog are told apart, and a chain rewritten from its first
event is named as such.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.audit.chain import Checkpoint, decode_signature, encode_signature, format_timestamp
from bastion.errors import ValidationError

RECORD_TYPE = "bastion.audit.checkpoint"
RECORD_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_NOTES = 20  # lines reported one by one; the rest are counted


class InvalidCheckpointExport(ValidationError):
    """The file given to ``--against`` holds no usable checkpoints."""

    code = "invalid_checkpoint_export"
    title = "Not a checkpoint export"


@dataclass(frozen=True)
class ExportedCheckpoint:
    """A checkpoint as a sink received it; ``line`` is where it was read (1-based)."""

    checkpoint: Checkpoint
    chain: str
    line: int = 0

    @property
    def seq(self) -> int:
        return self.checkpoint.seq


@dataclass(frozen=True)
class Anchors:
    """The checkpoints of one export, by seq (exact duplicates dropped)."""

    checkpoints: tuple[ExportedCheckpoint, ...]
    chain: str
    notes: tuple[str, ...] = ()  # lines that mention a checkpoint but could not be read
    unreadable: int = 0  # how many such lines (``notes`` lists the first MAX_NOTES)


def export_record(checkpoint: Checkpoint, *, chain: str) -> str:
    """The line a sink receives for ``checkpoint`` (no newline)."""
    record = {
        "type": RECORD_TYPE,
        "v": RECORD_VERSION,
        "chain": chain,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": format_timestamp(checkpoint.at),
        "kid": checkpoint.kid,
        "signature": encode_signature(checkpoint.signature),
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def parse_record(value: Any, *, line: int = 0) -> ExportedCheckpoint:
    """One exported record; ``ValueError`` saying which field is wrong."""
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    if value.get("type") != RECORD_TYPE:
        raise ValueError(f"type is not {RECORD_TYPE!r}")
    if value.get("v") != RECORD_VERSION:
        raise ValueError(f"unknown record version {value.get('v')!r}")
    seq = value.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("seq is not a positive integer")
    for name in ("chain", "hash"):
        if not isinstance(value.get(name), str) or not _HEX64.fullmatch(value[name]):
            raise ValueError(f"{name} is not a SHA-256 hex digest")
    kid, signature, at = value.get("kid"), value.get("signature"), value.get("at")
    if not isinstance(kid, str) or not 0 < len(kid) <= 64:
        raise ValueError("kid is not a key id")
    if not isinstance(signature, str):
        raise ValueError("signature is not base64url")
    if not isinstance(at, str):
        raise ValueError("at is not an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise ValueError("at is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError("at has no time zone")
    checkpoint = Checkpoint(seq, value["hash"], moment, kid, decode_signature(signature))
    return ExportedCheckpoint(checkpoint, value["chain"], line)


def _records(text: str) -> list[tuple[int, Any | ValueError]]:
    """(line, decoded JSON or the reason it is not) for every line naming a checkpoint.

    A whole-file JSON object or array is one checkpoint or a list of them. Otherwise each
    line is read from its first ``{`` to its last ``}``, so lines copied out of a syslog
    file (``Dec  1 10:05:00 host bastion-audit: {…}``) read as they are.
    """
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None
        if isinstance(whole, dict):
            return [(1, whole)]
        if isinstance(whole, list):
            return [(n, item) for n, item in enumerate(whole, 1)]
    found: list[tuple[int, Any | ValueError]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if RECORD_TYPE not in line:
            continue
        start, end = line.find("{"), line.rfind("}")
        try:
            found.append((number, json.loads(line[start : end + 1]) if 0 <= start < end else {}))
        except ValueError:
            found.append((number, ValueError("not complete JSON")))
    return found


def read_anchors(text: str, *, source: str = "the export") -> Anchors:
    """The exported checkpoints in ``text`` (a sink's JSON Lines, or one record).

    Raises ``InvalidCheckpointExport`` when there is none, or when they belong to
    different chains (split such a file by its ``chain`` first).
    """
    by_key: dict[tuple[str, int, str], ExportedCheckpoint] = {}
    notes: list[str] = []
    unreadable = 0
    for line, value in _records(text):
        try:
            if isinstance(value, ValueError):
                raise value
            exported = parse_record(value, line=line)
        except ValueError as exc:
            unreadable += 1
            if len(notes) < MAX_NOTES:
                notes.append(f"line {line}: not a checkpoint record ({exc})")
            continue
        by_key.setdefault((exported.chain, exported.seq, exported.checkpoint.hash), exported)
    if not by_key:
        raise InvalidCheckpointExport(
            f"{source} holds no checkpoint records ({RECORD_TYPE} lines)"
            + (f"; {notes[0]}" if notes else "")
        )
    chains = sorted({exported.chain for exported in by_key.values()})
    if len(chains) > 1:
        raise InvalidCheckpointExport(
            f"{source} holds checkpoints of {len(chains)} chains ("
            + ", ".join(chain[:12] + "…" for chain in chains)
            + "): keep the lines of one installation (grep its chain id)"
        )
    ordered = sorted(by_key.values(), key=lambda e: (e.seq, e.line))
    return Anchors(tuple(ordered), chains[0], tuple(notes), unreadable)
