"""``/admin``: users, service accounts and keys, tenants, roles, policy, audit, risk.

Each module holds the routes of one concept on its own router; this package joins
them under the ``/admin`` prefix.
"""

from fastapi import APIRouter

from bastion.api.admin import (
    audit,
    collections,
    policy,
    risk,
    roles,
    service_accounts,
    tenants,
    user_lifecycle,
    users,
)

router = APIRouter(prefix="/admin", tags=["admin"])
for _module in (
    tenants,
    users,
    user_lifecycle,
    service_accounts,
    roles,
    policy,
    audit,
    collections,
    risk,
):
    router.include_router(_module.router)

__all__ = ["router"]
