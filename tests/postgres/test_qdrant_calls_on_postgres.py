"""``tests/dataplane/test_qdrant_calls.py`` against a real Bastion on PostgreSQL (the
pgvector engine behind the same routes): the same test bodies, only ``live_server``
differs."""

from __future__ import annotations

from tests.dataplane import test_qdrant_calls as calls

pytestmark = calls.pytestmark


dev, raw, notes, shelf = calls.dev, calls.raw, calls.notes, calls.shelf
globals().update({name: value for name, value in vars(calls).items() if name.startswith("test_")})
