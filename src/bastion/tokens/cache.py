"""A bounded cache of verified access tokens, keyed by the token's SHA-256.

Why: an EdDSA verify through PyJWT costs ~270 µs, about as much as the HNSW search a
data-plane request exists for. A cache hit costs one SHA-256 and a dict lookup.

What it is not: a revocation check. A cache hit only says "this exact token string
passed ``verify_access_token`` earlier and has not reached its ``exp``". Whether the
session or token was revoked since is checked elsewhere on every request (the request
path does a short, ≤ 0.5 s, per-session liveness check against storage), and logout /
revocation should also call :meth:`VerifiedTokenCache.discard_session` or
:meth:`VerifiedTokenCache.discard` so this process forgets the token at once.

Only tokens verified with the process-wide issuer/audience belong here; the cache does
not re-check them.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import datetime

from bastion.tokens.access import VerifiedAccessToken

__all__ = ["VerifiedTokenCache"]


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class VerifiedTokenCache:
    """LRU map SHA-256(token) → :class:`VerifiedAccessToken`, entries dying at ``exp``.

    Methods never await, and a lock guards the few dict operations, so it is safe from
    the event loop and from worker threads alike. It reads no clock: ``get`` takes ``now``.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, VerifiedAccessToken] = OrderedDict()
        self._by_session: dict[str, set[bytes]] = {}
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        return self._max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, *, now: datetime) -> VerifiedAccessToken | None:
        """The verified claims of ``token`` if cached and not expired at ``now``."""
        key = _key(token)
        with self._lock:
            verified = self._entries.get(key)
            if verified is None:
                return None
            if verified.expires_at <= now:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return verified

    def put(self, token: str, verified: VerifiedAccessToken) -> None:
        """Remember a token that ``verify_access_token`` just accepted."""
        key = _key(token)
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = verified
            if verified.session_id is not None:
                self._by_session.setdefault(verified.session_id, set()).add(key)
            while len(self._entries) > self._max_entries:
                oldest = next(iter(self._entries))
                self._remove(oldest)

    def discard(self, token: str) -> None:
        """Forget one token (e.g. after RFC 7009 revocation)."""
        with self._lock:
            self._remove(_key(token))

    def discard_session(self, session_id: str) -> int:
        """Forget every token of a session (logout, revocation); returns how many."""
        with self._lock:
            keys = self._by_session.pop(session_id, set())
            for key in keys:
                self._entries.pop(key, None)
            return len(keys)

    def discard_subject(self, subject: str) -> int:
        """Forget every token of a user or service account (suspension, deprovisioning).

        A linear scan: rare admin actions only, never on the request path.
        """
        with self._lock:
            keys = [key for key, verified in self._entries.items() if verified.subject == subject]
            for key in keys:
                self._remove(key)
            return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_session.clear()

    def _remove(self, key: bytes) -> None:
        """Drop one entry and its session index (lock held)."""
        verified = self._entries.pop(key, None)
        if verified is None or verified.session_id is None:
            return
        keys = self._by_session.get(verified.session_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_session[verified.session_id]
