"""Remembered devices (issue 15): ``GET|DELETE /me/devices…`` for their user,
``GET|DELETE /admin/users/{id}/devices…`` for admins of the user's tenant.

Routes parse and render; ``authn.devices`` revokes and records ``device.revoked``. A
device is issued at a full MFA sign-in (``remember_device`` on
``/auth/login/{tx}/verify``); only its id, name and dates are ever shown, never the
credential or its hash.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy import Connection

from bastion.api.admin.common import iso, now, read, write
from bastion.api.admin.users import target_user
from bastion.api.guard import authorize, door_router
from bastion.api.openapi import raises
from bastion.api.responses import DevicesRevoked, DeviceView
from bastion.authn.devices import devices_of, revoke
from bastion.errors import NotFound
from bastion.identity.users import user_by_id
from bastion.risk import DeviceRecord

router = door_router(tags=["devices"])


def device_view(device: DeviceRecord, *, at: Any) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "created_at": iso(device.created_at),
        "expires_at": iso(device.expires_at),
        "last_used_at": iso(device.last_used_at),
        "last_ip": device.last_ip,
        "revoked_at": iso(device.revoked_at),
        "active": device.active(at),
    }


@router.get("/me/devices", response_model=list[DeviceView], summary="My remembered devices")
async def my_devices(request: Request) -> list[dict[str, Any]]:
    principal = await authorize(request, "me.sessions.manage")
    at = now(request)
    found = await read(request, lambda conn: devices_of(conn, principal.id))
    return [device_view(device, at=at) for device in found]


@router.delete(
    "/me/devices/{device_id}",
    status_code=204,
    responses=raises(NotFound),
    summary="Forget one of my devices",
)
async def my_device_revoke(request: Request, device_id: str) -> Response:
    principal = await authorize(request, "me.sessions.manage")

    def work(conn: Connection) -> int:
        user = user_by_id(conn, principal.id)
        return revoke(conn, principal, user, device_id[:64], now=now(request))

    await write(request, work)
    return Response(status_code=204)


@router.get(
    "/admin/users/{user_id}/devices",
    tags=["admin"],
    response_model=list[DeviceView],
    responses=raises(NotFound),
    summary="A user's devices",
)
async def user_devices(request: Request, user_id: str) -> list[dict[str, Any]]:
    _, user = await target_user(request, "users.read", user_id)
    at = now(request)
    found = await read(request, lambda conn: devices_of(conn, user.id))
    return [device_view(device, at=at) for device in found]


@router.delete(
    "/admin/users/{user_id}/devices/{device_id}",
    status_code=204,
    tags=["admin"],
    responses=raises(NotFound),
    summary="Revoke one of a user's remembered devices",
)
async def user_device_revoke(request: Request, user_id: str, device_id: str) -> Response:
    principal, user = await target_user(request, "users.manage", user_id)
    await write(
        request, lambda conn: revoke(conn, principal, user, device_id[:64], now=now(request))
    )
    return Response(status_code=204)


@router.delete(
    "/admin/users/{user_id}/devices",
    tags=["admin"],
    response_model=DevicesRevoked,
    responses=raises(NotFound),
    summary="Revoke every remembered device of a user",
)
async def user_devices_revoke(request: Request, user_id: str) -> dict[str, Any]:
    principal, user = await target_user(request, "users.manage", user_id)
    count = await write(request, lambda conn: revoke(conn, principal, user, None, now=now(request)))
    return {"revoked": count}
