"""``/me``: the signed-in user's own account, factors, recovery codes, password and
sessions (``DELETE /me/sessions``: sign out everywhere, remembered devices too).

Routes parse and render; the use cases are ``authn.self_service`` and ``authn.password``.
Every allow, deny or step-up is ``authz.decide``'s: ``me.read``, ``me.factors.read`` and
``me.sessions.manage`` at the door; the changes of how the account signs in
(``me.factors.enroll``, ``me.factors.remove``, ``me.password.change``: a recent proof
with a factor the account already had) inside the transaction of the change, which
reads the account's factors. An ``enrollment_required`` token reaches only ``me.read``
and the ``me.factors…`` enrolment.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import Name, StrictBody
from bastion.api.client import client_context, count_refused
from bastion.api.guard import authenticate, authorize, door_router, forget, runtime
from bastion.api.openapi import raises
from bastion.api.responses import (
    CreationOptions,
    FactorActivated,
    FactorView,
    MeView,
    PasswordChanged,
    RecoveryCodes,
    SessionView,
    SignedOutEverywhere,
    TotpEnrollment,
)
from bastion.api.views import factor_view
from bastion.authn.enrollment import list_factors
from bastion.authn.key_enrollment import (
    finish_key_registration,
    rename_factor,
    start_key_registration,
)
from bastion.authn.password import change_password
from bastion.authn.self_service import (
    drop_factor,
    end_own_session,
    finish_totp,
    new_recovery_codes,
    sign_out_everywhere,
    start_totp,
)
from bastion.authn.sessions import list_sessions
from bastion.errors import Conflict, NotFound, RateLimited

router = door_router(prefix="/me", tags=["me"])


class TotpBody(StrictBody):
    name: Name = Field("Authenticator app", min_length=1, max_length=128)


class KeyBody(StrictBody):
    # PublicKeyCredentialJSON (RegistrationResponseJSON) of navigator.credentials.create()
    credential: dict[str, Any]
    name: Name = Field("Security key", min_length=1, max_length=128)


class RenameBody(StrictBody):
    name: Name = Field(min_length=1, max_length=128)


class CodeBody(StrictBody):
    code: str = Field(min_length=1, max_length=64)


class PasswordBody(StrictBody):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


@router.get("", response_model=MeView, summary="Who am I")
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


@router.get("/factors", response_model=list[FactorView], summary="My authenticators (no secrets)")
async def factors(request: Request) -> list[dict[str, Any]]:
    principal = await authorize(request, "me.factors.read")
    rt = runtime(request)

    def read() -> list[dict[str, Any]]:
        with rt.db.read() as conn:
            return [factor_view(factor) for factor in list_factors(conn, principal.id)]

    return await run_in_threadpool(read)


@router.post(
    "/factors/totp", response_model=TotpEnrollment, status_code=201, summary="Start TOTP enrollment"
)
async def totp_enroll(request: Request, body: TotpBody | None = None) -> dict[str, Any]:
    principal = await authenticate(request)
    name = body.name if body else "Authenticator app"
    deps = runtime(request).authn
    context = client_context(request)
    enrollment = await run_in_threadpool(
        lambda: start_totp(deps, principal, name=name, context=context)
    )
    return {
        "factor_id": enrollment.factor_id,
        "secret": enrollment.secret,
        "otpauth_uri": enrollment.otpauth_uri,
        "qr_svg": enrollment.qr_svg,
    }


@router.post(
    "/factors/totp/{factor_id}/activate",
    response_model=FactorActivated,
    responses=raises(NotFound, RateLimited),
    summary="Activate TOTP with a valid code",
)
async def totp_activate(request: Request, factor_id: str, body: CodeBody) -> dict[str, Any]:
    principal = await authenticate(request)
    deps = runtime(request).authn
    context = client_context(request)
    with count_refused(request, context.ip):
        factor = await run_in_threadpool(
            lambda: finish_totp(
                deps, principal, factor_id=factor_id, code=body.code, context=context
            )
        )
    return {"status": "active", "factor": factor_view(factor)}


@router.post(
    "/factors/webauthn/options",
    response_model=CreationOptions,
    responses=raises(Conflict),
    summary="Start registering a security key or passkey: the creation options",
)
async def webauthn_options(request: Request) -> dict[str, Any]:
    principal = await authenticate(request)
    deps = runtime(request).authn
    context = client_context(request)
    return await run_in_threadpool(lambda: start_key_registration(deps, principal, context=context))


@router.post(
    "/factors/webauthn",
    status_code=201,
    response_model=FactorActivated,
    responses=raises(Conflict),
    summary="Register a security key or passkey",
)
async def webauthn_register(request: Request, body: KeyBody) -> dict[str, Any]:
    principal = await authenticate(request)
    deps = runtime(request).authn
    context = client_context(request)
    factor = await run_in_threadpool(
        lambda: finish_key_registration(
            deps, principal, credential=body.credential, name=body.name, context=context
        )
    )
    return {"status": "active", "factor": factor_view(factor)}


@router.patch(
    "/factors/{factor_id}",
    response_model=FactorView,
    responses=raises(NotFound),
    summary="Rename one of my authenticators",
)
async def factor_rename(request: Request, factor_id: str, body: RenameBody) -> dict[str, Any]:
    principal = await authenticate(request)
    deps = runtime(request).authn
    context = client_context(request)
    factor = await run_in_threadpool(
        lambda: rename_factor(deps, principal, factor_id, name=body.name, context=context)
    )
    return factor_view(factor)


@router.post(
    "/recovery-codes",
    response_model=RecoveryCodes,
    summary="New recovery codes, shown once (old ones stop working)",
)
async def recovery_codes(request: Request) -> dict[str, Any]:
    principal = await authenticate(request)
    deps = runtime(request).authn
    context = client_context(request)
    codes = await run_in_threadpool(lambda: new_recovery_codes(deps, principal, context=context))
    return {"codes": codes}


@router.delete(
    "/factors/{factor_id}",
    responses=raises(NotFound),
    status_code=204,
    summary="Remove an authenticator (step-up)",
)
async def factor_remove(request: Request, factor_id: str) -> Response:
    principal = await authenticate(request)
    deps = runtime(request).authn
    context = client_context(request)
    await run_in_threadpool(lambda: drop_factor(deps, principal, factor_id, context=context))
    return Response(status_code=204)


@router.post(
    "/password",
    response_model=PasswordChanged,
    responses=raises(RateLimited),
    summary="Change my password (current and new; a recent proof; my other sessions and "
    "remembered devices end)",
)
async def password(request: Request, body: PasswordBody) -> dict[str, Any]:
    principal = await authenticate(request)
    deps = runtime(request).authn
    context = client_context(request)
    with count_refused(request, context.ip):
        changed = await run_in_threadpool(
            lambda: change_password(
                deps,
                principal,
                current=body.current_password,
                new=body.new_password,
                context=context,
            )
        )
    forget(request, subject=principal.id)
    return {
        "status": "changed",
        "sessions_revoked": changed.sessions_revoked,
        "devices_revoked": changed.devices_revoked,
    }


@router.get("/sessions", response_model=list[SessionView], summary="My live sessions")
async def sessions(request: Request) -> list[dict[str, Any]]:
    principal = await authorize(request, "me.sessions.manage")
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


@router.delete(
    "/sessions/{session_id}",
    responses=raises(NotFound),
    status_code=204,
    summary="End one of my sessions",
)
async def session_end(request: Request, session_id: str) -> Response:
    principal = await authorize(request, "me.sessions.manage")
    deps = runtime(request).authn
    await run_in_threadpool(lambda: end_own_session(deps, principal, session_id))
    forget(request, session_id=session_id)
    return Response(status_code=204)


@router.delete(
    "/sessions",
    response_model=SignedOutEverywhere,
    summary="Sign out everywhere: every session of mine (this one too), console sessions "
    "and remembered devices end",
)
async def sessions_end_all(request: Request) -> dict[str, Any]:
    principal = await authorize(request, "me.sessions.manage")
    deps = runtime(request).authn
    context = client_context(request)
    done = await run_in_threadpool(lambda: sign_out_everywhere(deps, principal, context=context))
    forget(request, subject=principal.id)
    return {
        "sessions_revoked": done.sessions_revoked,
        "console_sessions": done.console_sessions,
        "devices_revoked": done.devices_revoked,
    }
