"""What the routes of /auth, /me, /admin, /setup and the public endpoints answer: one
pydantic model per success body, named as the OpenAPI document shows it.

The routes build plain dicts (``api.views``, the ``*_view`` helpers); FastAPI checks
each answer against its ``response_model`` on the way out, so the document cannot drift
from the server. Fields are required unless the server may leave them out; unknown
fields pass (``extra="allow"``), so a field added to a view is not silently dropped.
Time stamps are ISO 8601 strings, as the views render them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """Optional fields the server leaves out are left out (``response_model_exclude_unset``)."""

    model_config = ConfigDict(extra="allow")


# -- /auth -------------------------------------------------------------------------------


class UnavailableMethod(Answer):
    """An enrolled method this server cannot run (not in ``methods``), and why."""

    method: str
    code: str
    detail: str


class MfaRequired(Answer):
    status: Literal["mfa_required"]
    transaction_id: str
    expires_in: int
    methods: list[str]
    unavailable: list[UnavailableMethod] | None = None


class Tokens(Answer):
    """RFC 6749 §5.1 token response (API.md "Token response")."""

    status: Literal["authenticated"]
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str
    acr: str
    amr: list[str]


class EnrollmentRequired(Answer):
    """A restricted token: only ``GET /me`` and the enrolment of a first factor."""

    status: Literal["enrollment_required"]
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


LoginAnswer = Annotated[MfaRequired | Tokens | EnrollmentRequired, Field(discriminator="status")]
TokenAnswer = Annotated[Tokens | EnrollmentRequired, Field(discriminator="status")]


class Revoked(BaseModel):
    """RFC 7009 §2.2: always an empty object."""

    model_config = ConfigDict(extra="forbid")


class LoggedOut(Answer):
    status: Literal["logged_out"]


class OAuthError(BaseModel):
    """RFC 6749 §5.2: what ``/auth/token`` (and ``/auth/logout`` with an API key) answer."""

    error: str
    error_description: str | None = None


class RequestOptions(Answer):
    """WebAuthn ``PublicKeyCredentialRequestOptionsJSON`` (W3C WebAuthn L3 §5.5)."""

    challenge: str
    timeout: int | None = None
    rpId: str | None = None
    allowCredentials: list[dict[str, object]] | None = None
    userVerification: str | None = None


class KeyChallenge(Answer):
    options: RequestOptions


class PasskeyStart(Answer):
    transaction_id: str
    options: RequestOptions


# -- /me ---------------------------------------------------------------------------------


class AddedFrom(Answer):
    ip: str | None
    user_agent: str | None
    session_id: str | None


class FactorView(Answer):
    """An authenticator, never its secret (``api.views.factor_view``)."""

    id: str
    type: str
    name: str
    status: str
    created_at: str
    activated_at: str | None
    last_used_at: str | None
    added_from: AddedFrom


class MeView(Answer):
    id: str
    username: str
    kind: str
    tenant: str
    roles: list[str]
    acr: str | None
    amr: list[str]
    auth_time: str | None
    restricted: str | None


class TotpEnrollment(Answer):
    factor_id: str
    secret: str
    otpauth_uri: str
    qr_svg: str


class CreationOptions(Answer):
    """WebAuthn ``PublicKeyCredentialCreationOptionsJSON`` (W3C WebAuthn L3 §5.4)."""

    rp: dict[str, object]
    user: dict[str, object]
    challenge: str
    pubKeyCredParams: list[dict[str, object]]


class FactorActivated(Answer):
    status: Literal["active"]
    factor: FactorView


class RecoveryCodes(Answer):
    codes: list[str]


class PasswordChanged(Answer):
    status: Literal["changed"]
    sessions_revoked: int
    devices_revoked: int


class SessionView(Answer):
    id: str
    acr: str
    amr: list[str]
    created_at: str
    expires_at: str
    current: bool


class DeviceView(Answer):
    """A remembered device: never its credential or the credential's hash."""

    id: str
    name: str
    created_at: str
    expires_at: str
    last_used_at: str | None
    last_ip: str | None
    revoked_at: str | None
    active: bool


class DevicesRevoked(Answer):
    revoked: int


class SignedOutEverywhere(Answer):
    sessions_revoked: int
    console_sessions: int
    devices_revoked: int


# -- /admin ------------------------------------------------------------------------------


class TenantView(Answer):
    id: str
    name: str
    created_at: str | None


class TenantList(Answer):
    tenants: list[TenantView]


class Enrollment(Answer):
    """The one-time enrolment link of a user created without a password (shown once)."""

    token: str
    url: str
    expires_at: str | None


class UserView(Answer):
    id: str
    username: str
    tenant: str
    status: str
    roles: list[str]
    collections: list[str] | None
    password_set: bool
    created_at: str | None
    updated_at: str | None


class CreatedUser(UserView):
    enrollment: Enrollment | None = None


class UserDetail(UserView):
    factors: list[FactorView]


class UserList(Answer):
    users: list[UserView]


class FactorsReset(Answer):
    user_id: str
    factors_removed: int
    sessions_revoked: bool


class Unlocked(Answer):
    user_id: str
    sign_in_failures: int
    second_factor_failures: int


class KeyView(Answer):
    """An API key as lists show it: an id and the last characters, never the key."""

    id: str
    service_account_id: str
    hint: str
    status: Literal["active", "expired", "revoked"]
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None


class NewKey(KeyView):
    key: str = Field(description="The API key itself: shown once, only its hash is stored.")


class KeyList(Answer):
    keys: list[KeyView]


class ServiceAccountView(Answer):
    id: str
    name: str
    tenant: str
    status: str
    roles: list[str]
    collections: list[str] | None
    created_at: str | None


class ServiceAccountDetail(ServiceAccountView):
    keys: list[KeyView]


class ServiceAccountList(Answer):
    service_accounts: list[ServiceAccountView]


class RoleView(Answer):
    name: str
    description: str
    permissions: list[str]
    builtin: bool


class RoleList(Answer):
    tenant: str
    roles: list[RoleView]


class Requirement(Answer):
    acr: str
    max_age: int | None


class PolicyDocument(Answer):
    """The tenant's policy (docs/permissions.md); ``PUT`` takes the same document."""

    mfa_required: bool
    password_min_length: int
    admin_requires_aal3: bool
    service_account_actions: list[str]
    actions: dict[str, Requirement]


class AuditEvent(Answer):
    seq: int
    id: str
    at: str
    tenant_id: str | None
    actor: str | None
    action: str
    outcome: str
    resource: str | None
    reason: str | None
    details: dict[str, object]
    prev_hash: str
    hash: str


class AuditPage(Answer):
    events: list[AuditEvent]
    next: int | None = Field(description="The ``after`` of the next page; null: the last page.")


class ChainVerified(Answer):
    """Installation admins see the whole chain's counts; a tenant's admin, their own."""

    ok: bool
    events: int
    signatures_verified: bool
    scope: Literal["installation", "tenant"]
    checkpoints_checked: int | None = None
    first_broken_seq: int | None = None
    problem: str | None = None


class CollectionSize(Answer):
    name: str
    dim: int
    distance: str
    points: int
    disk_bytes: int


class CollectionSizes(Answer):
    collections: list[CollectionSize]


class RiskEvent(Answer):
    id: str
    at: str
    kind: str
    outcome: str
    tenant_id: str | None
    principal_id: str | None
    ip: str | None
    country: str | None
    score: int
    level: str
    decision: str
    reasons: list[dict[str, Any]]


class RiskEvents(Answer):
    events: list[RiskEvent]
    next: str | None


# -- /setup and public endpoints ---------------------------------------------------------


class SetupDone(Answer):
    status: Literal["created", "password_set"]
    username: str


class ServerIdentity(Answer):
    title: str
    version: str
    commit: str | None
    bastion_version: str


class Jwk(Answer):
    kty: str
    kid: str
    use: str
    alg: str
    crv: str | None = None
    x: str | None = None
    y: str | None = None


class Jwks(Answer):
    keys: list[Jwk]


class Health(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    status: Literal["ready", "unavailable"]
    collections: Literal["loaded", "loading"]
    database: Literal["ok", "unavailable"]
