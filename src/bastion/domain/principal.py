"""Who is making a request: the result of authentication, the input of ``authz.decide``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

PrincipalKind = Literal["user", "service_account", "anonymous"]


@dataclass(frozen=True)
class Grant:
    """A role held in a tenant, optionally narrowed to collections (names or ``prefix*``)."""

    role: str
    tenant_id: str
    collections: tuple[str, ...] | None = None  # None: every collection of the tenant


@dataclass(frozen=True)
class Principal:
    """An authenticated caller with its live grants and the assurance of its credential."""

    kind: PrincipalKind
    id: str
    name: str
    tenant_id: str
    tenant_name: str
    grants: tuple[Grant, ...]
    acr: str  # aal1 | aal2 | aal3 (service accounts: aal1)
    amr: tuple[str, ...] = ()
    auth_time: datetime | None = None
    session_id: str | None = None
    token_id: str | None = None  # jti of the access token, or the API key id
    restricted: str | None = None  # "enrollment": may only reach /me and /me/factors…

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(grant.role for grant in self.grants))
