"""Request authentication: the credential headers of a request → a live ``Principal``.

One small layer, in the manner of Starlette's ``AuthenticationBackend``: it knows the
two credentials Bastion accepts (``Authorization: Bearer <access token>`` and
``api-key: <key>``), and nothing of routes, actions or decisions (``api.guard`` asks
``authz.decide`` afterwards).

Cost per request stays small: a verified access token is cached until it expires
(EdDSA verify ≈ 270 µs, ``tokens.VerifiedTokenCache``), and the *live* state behind a
credential — session not revoked, user active, current grants, key not revoked — is
re-read from the database at most every ``LIVENESS_TTL`` seconds, single-flight
(``authn.liveness``). Principals built for a live state are remembered on it, and so are
the clock-free decisions taken for them (``Authenticated.memo``); both die with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection

from bastion.authn.continuous import SignInOrigin
from bastion.authn.liveness import LivenessCache
from bastion.authn.sessions import session_by_id
from bastion.clock import Clock
from bastion.domain import Grant, Principal
from bastion.errors import AuthenticationError, InvalidToken
from bastion.identity.grants import grants_of
from bastion.identity.service_accounts import api_key_state
from bastion.identity.tenants import tenant_by_id
from bastion.identity.users import user_by_id
from bastion.storage import Database
from bastion.tokens import VerifiedAccessToken, VerifiedTokenCache, parse_secret

MAX_CREDENTIAL = 8192
T = TypeVar("T")
Memo = dict[Any, Any]


@dataclass(frozen=True, slots=True)
class Credentials:
    """The first ``Authorization`` and ``api-key`` headers of a request, as sent."""

    authorization: str | None
    api_key: str | None

    @classmethod
    def of(cls, headers: list[tuple[bytes, bytes]]) -> Credentials:
        """From an ASGI scope's raw header list, in one pass."""
        authorization = api_key = None
        for name, value in headers:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"api-key" and api_key is None:
                api_key = value.decode("latin-1")
        return cls(authorization, api_key)

    @property
    def present(self) -> bool:
        return bool(self.authorization or self.api_key)


@dataclass(frozen=True)
class LiveState:
    """What the database says now about a credential (``usable`` False: refused, and why)."""

    usable: bool
    principal_id: str = ""
    name: str = ""
    tenant_id: str = ""
    tenant_name: str = ""
    grants: tuple[Grant, ...] = ()
    restricted: str | None = None
    key_id: str | None = None
    expires_at: datetime | None = None  # the API key's own expiry
    refusal: str | None = None  # unknown, revoked, expired, account_inactive (API keys)
    origin_ip: str | None = None  # a session's: where and when it signed in
    origin_at: datetime | None = None
    # Principals built and decisions taken for this state; they die with it (≤ LIVENESS_TTL).
    memo: Memo = field(default_factory=dict, compare=False, hash=False)


_DEAD = LiveState(usable=False)


@dataclass(frozen=True, slots=True)
class Authenticated:
    principal: Principal
    memo: Memo | None  # decisions remembered on the credential's live state
    state_key: str | None  # that live state's key in the LivenessCache
    not_after: datetime | None  # the credential's own expiry (token exp, key expiry)
    origin: SignInOrigin | None = None  # a session's sign-in address and time


def session_state(conn: Connection, session_id: str, subject: str, now: datetime) -> LiveState:
    session = session_by_id(conn, session_id)
    if session is None or session.user_id != subject or not session.live(now):
        return _DEAD
    user = user_by_id(conn, session.user_id)
    if not user.active:
        return _DEAD
    tenant = tenant_by_id(conn, user.tenant_id)
    return LiveState(
        True,
        user.id,
        user.username,
        tenant.id,
        tenant.name,
        grants_of(conn, "user", user.id),
        session.restricted,
        origin_ip=session.ip,
        origin_at=session.auth_time,
    )


def key_state(conn: Connection, key_hash: str, now: datetime) -> LiveState:
    key = api_key_state(conn, key_hash)
    if key is None:
        return LiveState(usable=False, refusal="unknown")
    refusal = key.refusal(now)
    if refusal is not None:
        return LiveState(
            usable=False,
            principal_id=key.account_id,
            tenant_id=key.tenant_id,
            key_id=key.key_id,
            refusal=refusal,
        )
    tenant = tenant_by_id(conn, key.tenant_id)
    return LiveState(
        True,
        key.account_id,
        key.account_name,
        tenant.id,
        tenant.name,
        grants_of(conn, "service_account", key.account_id),
        None,
        key.key_id,
        key.expires_at,
    )


class RequestAuthenticator:
    """``authenticate(credentials)`` → ``Authenticated``, or ``AuthenticationError`` (401).

    ``anonymous``: the principal of a request without credentials when the operator
    enabled read-only anonymous access (``None``: such a request is refused).
    ``on_rejected_key(state)``: told of every refused API key (it counts them for audit).
    """

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        verify_token: Callable[[str], VerifiedAccessToken],
        token_cache: VerifiedTokenCache,
        liveness: LivenessCache,
        anonymous: Principal | None = None,
        on_rejected_key: Callable[[LiveState], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.verify_token = verify_token
        self.token_cache = token_cache
        self.liveness = liveness
        self.anonymous = anonymous
        self.on_rejected_key = on_rejected_key

    async def cached(self, key: str, load: Callable[[Connection], T]) -> T:
        """``load`` from the database at most every ``LIVENESS_TTL`` per key, off the loop."""

        def read() -> T:
            with self.db.read() as conn:
                return load(conn)

        return await self.liveness.get_or_load(key, read)

    async def authenticate(self, credentials: Credentials) -> Authenticated:
        authorization, api_key = credentials.authorization, credentials.api_key
        if authorization and api_key:
            raise AuthenticationError(
                "Send either a Bearer token or an api-key, not both.", code="invalid_request"
            )
        if authorization:
            if len(authorization) > MAX_CREDENTIAL:
                raise InvalidToken("The access token is too large.")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidToken("Use 'Authorization: Bearer <access token>'.")
            return await self._from_access_token(token.strip())
        if api_key:
            if len(api_key) > MAX_CREDENTIAL:
                raise InvalidToken("The API key is malformed.")
            return await self._from_api_key(api_key.strip())
        if self.anonymous is not None:
            return Authenticated(self.anonymous, None, None, None)
        raise AuthenticationError(
            "Authentication required: send 'Authorization: Bearer <access token>' "
            "or an 'api-key' header.",
        )

    async def _from_access_token(self, token: str) -> Authenticated:
        now = self.clock.now()
        verified = self.token_cache.get(token, now=now)
        if verified is None:
            verified = self.verify_token(token)
            self.token_cache.put(token, verified)
        session_id = verified.session_id
        if session_id is None:
            raise InvalidToken("The access token has no session.")
        state_key = "ses:" + session_id
        subject = verified.subject
        state = await self.cached(
            state_key, lambda conn: session_state(conn, session_id, subject, now)
        )
        if not state.usable:
            raise InvalidToken("The access token has been revoked or its user is not active.")
        known: Principal | None = state.memo.get(verified.jti)
        if known is None:
            known = Principal(
                kind="user",
                id=state.principal_id,
                name=state.name,
                tenant_id=state.tenant_id,
                tenant_name=state.tenant_name,
                grants=state.grants,
                acr=verified.acr,
                amr=tuple(verified.amr),
                auth_time=verified.auth_time,
                session_id=session_id,
                token_id=verified.jti,
                restricted=state.restricted,
            )
            state.memo[verified.jti] = known
        origin = SignInOrigin(state.origin_ip, state.origin_at)
        return Authenticated(known, state.memo, state_key, verified.expires_at, origin)

    async def _from_api_key(self, presented: str) -> Authenticated:
        now = self.clock.now()
        key_hash = parse_secret(presented, "api_key")
        state_key = "key:" + key_hash
        state = await self.cached(state_key, lambda conn: key_state(conn, key_hash, now))
        if not state.usable:
            if self.on_rejected_key is not None:
                self.on_rejected_key(state)
            raise InvalidToken("The API key is not valid, expired or revoked.")
        known: Principal | None = state.memo.get("principal")
        if known is None:
            known = Principal(
                kind="service_account",
                id=state.principal_id,
                name=state.name,
                tenant_id=state.tenant_id,
                tenant_name=state.tenant_name,
                grants=state.grants,
                acr="aal1",
                amr=("swk",),
                token_id=state.key_id,
                auth_time=now,
            )
            state.memo["principal"] = known
        return Authenticated(known, state.memo, state_key, state.expires_at)
