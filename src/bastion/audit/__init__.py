"""Audit: typed events appended to a hash chain; query, export, verify, signed checkpoints."""

from bastion.audit.chain import (
    GENESIS_HASH,
    Checkpoint,
    canonical_json,
    chain_record,
    checkpoint_message,
    format_timestamp,
    link_hash,
)
from bastion.audit.checkpoints import AuditChainBroken, Signer, latest_checkpoint, write_checkpoint
from bastion.audit.events import (
    EVENTS,
    OUTCOMES,
    AuditEvent,
    EventSpec,
    InvalidAuditEvent,
    decision_event,
    safe_text,
    secret_looking_key,
    secret_looking_value,
)
from bastion.audit.log import (
    MAX_LIMIT,
    QueryPage,
    StoredEvent,
    emit,
    export_ndjson,
    head,
    query,
)
from bastion.audit.verify import ChainReport, Verifier, read_checkpoints, verify_chain, verify_from

__all__ = [
    "EVENTS",
    "GENESIS_HASH",
    "MAX_LIMIT",
    "OUTCOMES",
    "AuditChainBroken",
    "AuditEvent",
    "ChainReport",
    "Checkpoint",
    "EventSpec",
    "InvalidAuditEvent",
    "QueryPage",
    "Signer",
    "StoredEvent",
    "Verifier",
    "canonical_json",
    "chain_record",
    "checkpoint_message",
    "decision_event",
    "emit",
    "export_ndjson",
    "format_timestamp",
    "head",
    "latest_checkpoint",
    "link_hash",
    "query",
    "read_checkpoints",
    "safe_text",
    "secret_looking_key",
    "secret_looking_value",
    "verify_chain",
    "verify_from",
    "write_checkpoint",
]
