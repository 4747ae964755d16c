"""How domain records look on the wire when several routers show them."""

from __future__ import annotations

from typing import Any

from bastion.authn.enrollment import FactorRecord


def factor_view(factor: FactorRecord) -> dict[str, Any]:
    """A factor as ``/me/factors`` and the admin API show it: never a secret."""
    return {
        "id": factor.id,
        "type": factor.type,
        "name": factor.name,
        "status": factor.status,
        "created_at": factor.created_at.isoformat(),
        "last_used_at": factor.last_used_at.isoformat() if factor.last_used_at else None,
    }
