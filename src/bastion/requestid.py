"""The id of the request being served, for log lines and audit events.

A bottom-layer module (standard library only): every layer may ask ``current()``.
The HTTP middleware (``bastion.api.observe``) binds one per request: the incoming
``X-Request-ID`` when it is a short safe token (a proxy's or a client's id, so one id
follows the request end to end), else a new random one, and returns it in the
``X-Request-ID`` response header. It lives in a ``ContextVar``, so it follows the
request into the worker threads its work runs in (``anyio.to_thread`` and
``asyncio.to_thread`` copy the context) and never leaks into another request's task.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any

HEADER = "x-request-id"
MAX_LENGTH = 64
# Letters, digits and ``. _ -`` only: no control characters, spaces, quotes or separators
# that could forge a log line or a header; UUIDs and hex ids (nginx's $request_id) fit.
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_current: ContextVar[str | None] = ContextVar("bastion_request_id", default=None)


# A request id is a handle to find a request by, not a secret: it needs to be unique, not
# unpredictable. ``secrets`` reads the kernel's generator on every call, and that system
# call releases the GIL: with the search threads running, getting it back cost the request
# µs (measured: bench/observe.py). So a per-process generator, seeded from ``secrets``.
_ids = random.Random(secrets.randbits(128))  # noqa: S311


def new() -> str:
    """A fresh random id: 16 hex digits (64 bits: unique enough to find one request)."""
    return f"{_ids.getrandbits(64):016x}"


def parse(raw: bytes | str | None) -> str | None:
    """An incoming header value as a request id, or ``None`` when it is not a short safe
    token (empty, longer than ``MAX_LENGTH``, or any character outside ``[A-Za-z0-9._-]``)."""
    if not raw or len(raw) > MAX_LENGTH:
        return None
    value = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return value if _SAFE.fullmatch(value) else None


def current() -> str | None:
    """The id of the request this code runs for, or ``None`` outside a request."""
    return _current.get()


def bind(request_id: str) -> Token[str | None]:
    """Make ``request_id`` current (until ``unbind`` with the returned token)."""
    return _current.set(request_id)


def unbind(token: Token[str | None]) -> None:
    _current.reset(token)


def stamped(details: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an audit event's ``details`` with the current ``request_id`` added (when
    there is one and the caller did not set it)."""
    found = dict(details)
    request_id = _current.get()
    if request_id is not None:
        found.setdefault("request_id", request_id)
    return found
