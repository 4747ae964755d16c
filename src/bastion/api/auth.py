"""``/auth``: login, second factors, refresh, revocation, logout, step-up (API.md "Login").

The ceremonies (``authn``) return typed results; this module renders them. Only the
second factors that are built are offered: TOTP, recovery codes and WebAuthn security
keys and passkeys (``/challenge`` with ``method: webauthn``; passwordless with
``/auth/passkey/…``). Push and one-time codes by message come with those factors.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import Name, StrictBody, json_or_form, text_field
from bastion.api.client import client_context, count_refused
from bastion.api.guard import SignedInFirst, authenticate, forget, runtime, signed_in
from bastion.api.openapi import raises, read_body
from bastion.api.responses import (
    KeyChallenge,
    LoggedOut,
    LoginAnswer,
    PasskeyStart,
    Revoked,
    TokenAnswer,
)
from bastion.authn.login import password_login
from bastion.authn.passkeys import passkey_options, passkey_sign_in
from bastion.authn.results import IssuedTokens, LoginResult, MfaRequired
from bastion.authn.second_factor import start_key_challenge, verify_factor
from bastion.authn.security_keys import webauthn_unavailable
from bastion.authn.sessions import end_session, refresh, session_of_refresh_token
from bastion.authn.step_up import StepUpRefused, start_step_up
from bastion.errors import (
    BastionError,
    Conflict,
    InvalidCode,
    InvalidCredentials,
    InvalidGrant,
    RateLimited,
    ValidationError,
)

router = APIRouter(prefix="/auth", tags=["auth"], route_class=SignedInFirst)


class LoginBody(StrictBody):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)
    device_id: str | None = Field(None, max_length=128)


class VerifyBody(StrictBody):
    method: Literal["totp", "recovery_code", "webauthn"]
    code: str | None = Field(None, max_length=64)
    # PublicKeyCredentialJSON (AuthenticationResponseJSON) of navigator.credentials.get()
    credential: dict[str, Any] | None = None
    # Issue a remembered-device credential with the tokens (a full MFA sign-in only).
    remember_device: bool = False
    device_name: Name | None = Field(None, min_length=1, max_length=64)


class ChallengeBody(StrictBody):
    method: Literal["webauthn"]


class PasskeyBody(StrictBody):
    transaction_id: str = Field(min_length=1, max_length=64)
    credential: dict[str, Any]


class StepUpBody(StrictBody):
    acr_values: Literal["aal2", "aal3"] | None = None


class TokenForm(StrictBody):
    """RFC 6749 §6 refresh request (form or JSON; read by ``token``)."""

    grant_type: Literal["refresh_token"]
    refresh_token: str


class RevokeForm(StrictBody):
    """RFC 7009 §2.1 revocation request (form or JSON; read by ``revoke``)."""

    token: str
    token_type_hint: str | None = None


def render_tokens(tokens: IssuedTokens) -> dict[str, Any]:
    """RFC 6749 §5.1 (API.md "Token response"); a restricted session: enrollment_required."""
    if tokens.restricted is not None:
        return {
            "status": "enrollment_required",
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": tokens.expires_in,
        }
    return {
        "status": "authenticated",
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
        "acr": tokens.acr,
        "amr": list(tokens.amr),
    } | ({"device_credential": tokens.device_credential} if tokens.device_credential else {})


def unavailable_view(method: str) -> dict[str, str]:
    """An enrolled method this server cannot run, and why (only WebAuthn today: no
    relying party, an IP-address public URL), with the code ``/challenge`` would answer."""
    reason = webauthn_unavailable()
    return {"method": method, "code": reason.code, "detail": reason.detail}


def render(result: LoginResult) -> dict[str, Any]:
    if isinstance(result, MfaRequired):
        return (
            {
                "status": "mfa_required",
                "transaction_id": result.transaction_id,
                "expires_in": result.expires_in,
                "methods": list(result.methods),
            }
            | ({"risk": {"level": result.risk_level}} if result.risk_level else {})
            | (
                {"unavailable": [unavailable_view(m) for m in result.unavailable]}
                if result.unavailable
                else {}
            )
        )
    return render_tokens(result)


@router.post(
    "/login",
    response_model=LoginAnswer,
    responses=raises(InvalidCredentials, RateLimited),
    summary="Start a login with username and password",
)
def login(request: Request, body: LoginBody) -> dict[str, Any]:
    context = client_context(request, body.device_id)
    with count_refused(request, context.ip):
        result = password_login(
            runtime(request).authn, username=body.username, password=body.password, context=context
        )
    return render(result)


@router.post(
    "/login/{transaction_id}/challenge",
    response_model=KeyChallenge,
    responses=raises(InvalidCode, Conflict),
    summary="Ask for a second factor's challenge (webauthn: the request options)",
)
def challenge(request: Request, transaction_id: str, body: ChallengeBody) -> dict[str, Any]:
    options = start_key_challenge(runtime(request).authn, transaction_id=transaction_id)
    return {"options": options}


@router.post(
    "/login/{transaction_id}/verify",
    response_model=LoginAnswer,
    responses=raises(InvalidCode, RateLimited),
    summary="Verify a second factor",
)
def verify(request: Request, transaction_id: str, body: VerifyBody) -> dict[str, Any]:
    context = client_context(request)
    with count_refused(request, context.ip):
        result = verify_factor(
            runtime(request).authn,
            transaction_id=transaction_id,
            method=body.method,
            code=body.code,
            credential=body.credential,
            context=context,
            remember_device=body.remember_device,
            device_name=body.device_name,
        )
    return render(result)


@router.post(
    "/passkey/options",
    response_model=PasskeyStart,
    responses=raises(RateLimited, Conflict),
    summary="Start a passwordless sign-in with a passkey (no username): request options",
)
def passkey_start(request: Request) -> dict[str, Any]:
    context = client_context(request)
    with count_refused(request, context.ip):
        started = passkey_options(runtime(request).authn, context=context)
    return {"transaction_id": started.transaction_id, "options": started.options}


@router.post(
    "/passkey/verify",
    response_model=LoginAnswer,
    responses=raises(InvalidCredentials, RateLimited, Conflict),
    summary="Finish a passkey sign-in: tokens, or invalid_credentials",
)
def passkey_verify(request: Request, body: PasskeyBody) -> dict[str, Any]:
    context = client_context(request)
    with count_refused(request, context.ip):
        result = passkey_sign_in(
            runtime(request).authn,
            transaction_id=body.transaction_id,
            credential=body.credential,
            context=context,
        )
    return render(result)


@router.post(
    "/token",
    openapi_extra=read_body(TokenForm, form=True),
    response_model=TokenAnswer,
    responses=raises(InvalidGrant),
    summary="Refresh tokens (grant_type=refresh_token), form or JSON",
)
async def token(request: Request) -> dict[str, Any]:
    body = await json_or_form(request)
    grant_type = text_field(body, "grant_type")
    if grant_type != "refresh_token":
        raise ValidationError(
            "Only grant_type=refresh_token is supported.", code="unsupported_grant_type"
        )
    presented = text_field(body, "refresh_token")
    assert presented is not None
    rt = runtime(request)

    def rotate() -> dict[str, Any]:
        with rt.db.begin() as conn:
            outcome = refresh(conn, rt.sessions, presented, now=rt.clock.now())
        if outcome.revoked_session is not None:
            rt.token_cache.discard_session(outcome.revoked_session)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.tokens is not None
        return render_tokens(outcome.tokens)

    return await run_in_threadpool(rotate)


@router.post(
    "/revoke",
    openapi_extra=read_body(RevokeForm, form=True, required=False),
    response_model=Revoked,
    summary="Revoke a refresh or access token (RFC 7009): always 200",
)
async def revoke(request: Request) -> dict[str, Any]:
    try:
        body = await json_or_form(request)
        presented = text_field(body, "token", required=False)
    except BastionError:
        presented = None
    if not presented:
        return {}
    rt = runtime(request)
    session_id: str | None = None
    if presented.startswith("bst_rt_"):
        with rt.db.read() as conn:
            session_id = session_of_refresh_token(conn, presented)
    else:
        try:
            verified = rt.verify_access_token(presented)
            session_id = verified.session_id
        except BastionError:
            session_id = None
    if session_id:
        await run_in_threadpool(
            _end_session, request, session_id, reason="revoked", action="token.revoked"
        )
    return {}


def _end_session(request: Request, session_id: str, *, reason: str, action: str) -> None:
    rt = runtime(request)
    with rt.db.begin() as conn:
        ended = end_session(
            conn,
            session_id,
            reason=reason,
            action="session.logout" if action == "session.logout" else "token.revoked",
            now=rt.clock.now(),
        )
    if ended is not None:
        forget(request, session_id=session_id)


@router.post(
    "/logout",
    response_model=LoggedOut,
    responses=raises(InvalidGrant),
    dependencies=[Depends(signed_in)],
    summary="End the current session: every token of it dies",
)
async def logout(request: Request) -> dict[str, Any]:
    principal = await authenticate(request)
    if principal.session_id is None:
        raise InvalidGrant("API keys have no session to log out of.")
    await run_in_threadpool(
        _end_session, request, principal.session_id, reason="logout", action="session.logout"
    )
    return {"status": "logged_out"}


@router.post(
    "/step-up",
    openapi_extra=read_body(StepUpBody, required=False),
    response_model=LoginAnswer,
    responses=raises(StepUpRefused),
    dependencies=[Depends(signed_in)],
    summary="Start a step-up to a higher acr (RFC 9470; scored by the risk engine)",
)
async def step_up(request: Request) -> dict[str, Any]:
    principal = await authenticate(request)
    raw = await request.body()
    try:
        body = StepUpBody.model_validate_json(raw) if raw.strip() else StepUpBody()
    except PydanticValidationError:
        raise ValidationError(
            'The body must be {} or {"acr_values": "aal2"|"aal3"}.', field="acr_values"
        ) from None
    context = client_context(request)

    def begin() -> dict[str, Any]:
        deps = runtime(request).authn
        return render(start_step_up(deps, principal, acr_values=body.acr_values, context=context))

    return await run_in_threadpool(begin)
