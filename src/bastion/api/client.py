"""What a request says about its client (address, user agent), and refused attempts
counted rather than written one by one.

A sign-in, a second factor or a password check refused by a throttle (``429``) is
counted in the audit buffer, one ``login.failure`` (reason ``rate_limited``) per limit,
address and second: a flood of refused attempts must not become a flood of writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from bastion.authn.login import ClientContext
from bastion.errors import RateLimited

__all__ = ["client_context", "count_refused"]


def client_context(request: Request, device_id: str | None = None) -> ClientContext:
    return ClientContext(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        device_id=device_id,
    )


@contextmanager
def count_refused(request: Request, ip: str | None) -> Iterator[None]:
    """Count a ``RateLimited`` raised inside (and let it through)."""
    try:
        yield
    except RateLimited as refused:
        request.app.state.audit_buffer.count_refused_sign_in(refused.scope, ip)
        raise
