"""The door's memory of requests it admitted moments ago.

Same credential, action and resource as a request that passed the whole door: served
at once, until the live state or the tenant rules behind that decision are re-read
(≤ ``LIVENESS_TTL``) and never past the credential's own expiry. Entries live in the
liveness cache, so ``clear()`` after an administrative change drops them too. Only
clock-free decisions (no ``max_age``) are remembered; raw credentials are never kept,
only their SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from bastion.authn.liveness import LivenessCache
from bastion.authn.request import Credentials
from bastion.clock import Clock
from bastion.domain import Principal

AdmittedKey = tuple[bytes, str, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Admitted:
    principal: Principal
    not_after: datetime | None


def admitted_key(
    credentials: Credentials, action: str, tenant_id: str | None, collection: str | None
) -> AdmittedKey | None:
    """The credential (as its SHA-256) and what it asks for; None without one credential."""
    authorization, api_key = credentials.authorization, credentials.api_key
    credential = authorization or api_key
    if not credential or (authorization and api_key):
        return None
    digest = hashlib.sha256(credential.encode("utf-8", "surrogateescape")).digest()
    return digest, action, tenant_id, collection


def admitted(cache: LivenessCache, key: AdmittedKey | None, clock: Clock) -> Principal | None:
    """The principal of a request admitted moments ago, while its credential is valid."""
    found: Admitted | None = cache.get(key) if key is not None else None
    if found is None or (found.not_after is not None and clock.now() >= found.not_after):
        return None
    return found.principal


def admit(
    cache: LivenessCache,
    key: AdmittedKey,
    principal: Principal,
    *,
    not_after: datetime | None,
    depends_on: tuple[str, ...],
) -> None:
    """Remember an admitted request until the first of ``depends_on`` entries is re-read."""
    until = min(cache.expiry(entry) for entry in depends_on)
    cache.put(key, Admitted(principal, not_after), until=until)
