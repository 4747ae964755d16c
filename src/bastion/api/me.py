"""``/me``: the signed-in user's own account, factors, recovery codes and sessions.

Every route asks ``authz`` (``me.read``, ``me.factors.enroll``, ``me.factors.remove``,
``me.sessions.manage``); an ``enrollment_required`` token reaches only the first two.
Adding an authenticator to an account that already has one needs an aal2 token, or
the enrollment session that activated every active factor itself: a stolen password
alone never adds the thief's authenticator to an account that has one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import StrictBody
from bastion.api.guard import authorize, forget, runtime
from bastion.audit import AuditEvent, emit
from bastion.authn.enrollment import (
    activate_totp,
    all_active_enrolled_in,
    enroll_totp,
    has_active_second_factor,
    list_factors,
    regenerate_recovery_codes,
    remove_factor,
)
from bastion.authn.sessions import list_sessions, revoke_session, session_by_id
from bastion.domain import Principal, acr_satisfies
from bastion.errors import AuthorizationError, NotFound, StepUpRequired

router = APIRouter(prefix="/me", tags=["me"])


class TotpBody(StrictBody):
    name: str = Field("Authenticator app", min_length=1, max_length=128)


class CodeBody(StrictBody):
    code: str = Field(min_length=1, max_length=64)


async def _user(request: Request, action: str) -> Principal:
    principal = await authorize(request, action)
    if principal.kind != "user":
        raise AuthorizationError("This is for users; service accounts have no factors.")
    return principal


def _audit(request: Request, conn: Any, principal: Principal, action: str, **details: Any) -> None:
    emit(
        conn,
        AuditEvent(
            action=action,
            outcome="success",
            actor=principal.id,
            tenant_id=principal.tenant_id,
            resource=f"user:{principal.id}",
            details=details,
        ),
        now=runtime(request).clock.now(),
    )


@router.get("", summary="Who am I")
async def me(request: Request) -> dict[str, Any]:
    principal = await authorize(request, "me.read")
    return {
        "id": principal.id,
        "username": principal.name,
        "kind": principal.kind,
        "tenant": principal.tenant_name,
        "roles": list(principal.roles),
        "acr": principal.acr,
        "amr": list(principal.amr),
        "auth_time": principal.auth_time.isoformat() if principal.auth_time else None,
        "restricted": principal.restricted,
    }


@router.get("/factors", summary="My authenticators (no secrets)")
async def factors(request: Request) -> list[dict[str, Any]]:
    principal = await _user(request, "me.read")
    rt = runtime(request)

    def read() -> list[dict[str, Any]]:
        with rt.db.read() as conn:
            return [factor.public() for factor in list_factors(conn, principal.id)]

    return await run_in_threadpool(read)


def _may_add_factor(conn: Any, principal: Principal) -> None:
    if acr_satisfies(principal.acr, "aal2") or not has_active_second_factor(conn, principal.id):
        return
    if (
        principal.restricted
        and principal.session_id
        and all_active_enrolled_in(conn, principal.id, principal.session_id)
    ):
        return  # the same enrollment session finishing its set-up (e.g. recovery codes)
    raise StepUpRequired(
        "Adding an authenticator needs a two-factor sign-in.", acr="aal2", max_age=None
    )


@router.post("/factors/totp", status_code=201, summary="Start TOTP enrollment")
async def totp_enroll(request: Request, body: TotpBody | None = None) -> dict[str, Any]:
    principal = await _user(request, "me.factors.enroll")
    rt = runtime(request)
    name = body.name if body else "Authenticator app"

    def enroll() -> dict[str, Any]:
        with rt.db.begin() as conn:
            _may_add_factor(conn, principal)
            enrollment = enroll_totp(
                conn,
                rt.sealer,
                user_id=principal.id,
                account_name=principal.name,
                name=name,
                now=rt.clock.now(),
                session_id=principal.session_id,
            )
            _audit(
                request,
                conn,
                principal,
                "factor.enrolled",
                factor_type="totp",
                factor_id=enrollment.factor_id,
                name=name,
            )
        return {
            "factor_id": enrollment.factor_id,
            "secret": enrollment.secret,
            "otpauth_uri": enrollment.otpauth_uri,
            "qr_svg": enrollment.qr_svg,
        }

    return await run_in_threadpool(enroll)


@router.post("/factors/totp/{factor_id}/activate", summary="Activate TOTP with a valid code")
async def totp_activate(request: Request, factor_id: str, body: CodeBody) -> dict[str, Any]:
    principal = await _user(request, "me.factors.enroll")
    rt = runtime(request)

    def activate() -> dict[str, Any]:
        with rt.db.begin() as conn:
            _may_add_factor(conn, principal)
            factor = activate_totp(
                conn,
                rt.sealer,
                user_id=principal.id,
                factor_id=factor_id,
                code=body.code,
                now=rt.clock.now(),
            )
            _audit(
                request,
                conn,
                principal,
                "factor.activated",
                factor_type="totp",
                factor_id=factor.id,
            )
        return {"status": "active", "factor": factor.public()}

    return await run_in_threadpool(activate)


@router.post("/recovery-codes", summary="New recovery codes, shown once (old ones stop working)")
async def recovery_codes(request: Request) -> dict[str, Any]:
    principal = await _user(request, "me.factors.enroll")
    rt = runtime(request)

    def regenerate() -> dict[str, Any]:
        with rt.db.begin() as conn:
            _may_add_factor(conn, principal)
            codes = regenerate_recovery_codes(conn, user_id=principal.id, now=rt.clock.now())
            _audit(request, conn, principal, "recovery_codes.regenerated", count=len(codes))
        return {"codes": codes}

    return await run_in_threadpool(regenerate)


@router.delete("/factors/{factor_id}", status_code=204, summary="Remove an authenticator (step-up)")
async def factor_remove(request: Request, factor_id: str) -> Response:
    principal = await _user(request, "me.factors.remove")
    rt = runtime(request)

    def remove() -> None:
        with rt.db.begin() as conn:
            factor = remove_factor(conn, user_id=principal.id, factor_id=factor_id)
            _audit(
                request,
                conn,
                principal,
                "factor.removed",
                factor_type=factor.type,
                factor_id=factor.id,
            )

    await run_in_threadpool(remove)
    return Response(status_code=204)


@router.get("/sessions", summary="My live sessions")
async def sessions(request: Request) -> list[dict[str, Any]]:
    principal = await _user(request, "me.sessions.manage")
    rt = runtime(request)

    def read() -> list[dict[str, Any]]:
        with rt.db.read() as conn:
            live = list_sessions(conn, principal.id, now=rt.clock.now())
        return [
            {
                "id": s.id,
                "acr": s.acr,
                "amr": list(s.amr),
                "created_at": s.created_at.isoformat(),
                "expires_at": s.expires_at.isoformat(),
                "current": s.id == principal.session_id,
            }
            for s in live
        ]

    return await run_in_threadpool(read)


@router.delete("/sessions/{session_id}", status_code=204, summary="End one of my sessions")
async def session_end(request: Request, session_id: str) -> Response:
    principal = await _user(request, "me.sessions.manage")
    rt = runtime(request)

    def end() -> None:
        now = rt.clock.now()
        with rt.db.begin() as conn:
            session = session_by_id(conn, session_id)
            if session is None or session.user_id != principal.id:
                raise NotFound("No such session.", code="session_not_found")
            revoke_session(conn, session_id, reason="user_ended", now=now)
            _audit(request, conn, principal, "session.revoked", session_id=session_id)

    await run_in_threadpool(end)
    forget(request, session_id=session_id)
    return Response(status_code=204)
