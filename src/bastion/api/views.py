"""How domain records look on the wire when several routers show them."""

from __future__ import annotations

from typing import Any

from bastion.authn.enrollment import FactorRecord


def factor_view(factor: FactorRecord) -> dict[str, Any]:
    """A factor as ``/me/factors`` and the admin API show it: never a secret; when
    (``created_at``, ``activated_at``) and from where (``added_from``) it was added. A
    security key or passkey says whether it is ``device_bound`` (BE = 0: it can reach
    aal3) or synced (aal2 at most)."""
    view: dict[str, Any] = {
        "id": factor.id,
        "type": factor.type,
        "name": factor.name,
        "status": factor.status,
        "created_at": factor.created_at.isoformat(),
        "activated_at": factor.activated_at.isoformat() if factor.activated_at else None,
        "last_used_at": factor.last_used_at.isoformat() if factor.last_used_at else None,
        "added_from": {
            "ip": factor.added.ip,
            "user_agent": factor.added.user_agent,
            "session_id": factor.added.session_id,
        },
    }
    if factor.type == "webauthn" and factor.backup_eligible is not None:
        view["device_bound"] = not factor.backup_eligible
    return view
