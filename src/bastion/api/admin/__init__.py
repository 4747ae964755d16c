"""``/admin``: users, service accounts and keys, tenants, roles, policy, audit."""

from fastapi import APIRouter

router = APIRouter(prefix="/admin", tags=["admin"])

__all__ = ["router"]
