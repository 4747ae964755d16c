"""Credentials for admin tests, minted with Bastion's own code (as a login would leave them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bastion.runtime import Runtime
from tests.support.app import Env
from tests.support.credentials import AMR, new_session, new_user

__all__ = ["AMR", "Minted", "events", "mint", "problem", "runtime_of"]


@dataclass(frozen=True)
class Minted:
    token: str
    user_id: str
    username: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def runtime_of(env: Env) -> Runtime:
    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    return rt


def mint(
    env: Env,
    *,
    role: str | None = "admin",
    roles: Sequence[str] | None = None,
    tenant: str = "default",
    acr: str = "aal3",
    age: int = 0,
    collections: Sequence[str] | None = None,
    username: str | None = None,
) -> Minted:
    """A user with ``roles`` and a live session; ``age`` seconds since its authentication."""
    rt = runtime_of(env)
    now = env.clock.now()
    held = list(roles) if roles is not None else ([role] if role else [])
    with rt.db.begin() as conn:
        user = new_user(
            conn, roles=held, tenant=tenant, collections=collections, username=username, now=now
        )
        issued = new_session(conn, rt.sessions, user, acr=acr, age=age, now=now)
    return Minted(issued.access_token, user.id, user.username)


def events(env: Env, admin: Minted, **filters: Any) -> list[dict[str, Any]]:
    """Audit events through ``GET /admin/audit`` (newest first)."""
    response = env.client.get("/admin/audit", headers=admin.auth, params=filters)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body
