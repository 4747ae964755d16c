"""The per-request door: authenticate the caller, then ask ``authz.decide``.

Routers call ``authorize(request, action, collection=…)`` and nothing else to check
access; no router looks at roles itself.

Cost per request stays small: a verified access token is cached until it expires
(EdDSA verify ≈ 270 µs), and the *live* state behind a credential — session not
revoked, user active, current grants, key not revoked — is re-read from the
database at most every ``LIVENESS_TTL`` seconds. So a revoked token, a suspended
user, a removed role or a deleted key stops working within one second on every
replica, without a database round trip on every request.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from bastion.audit import AuditEvent, decision_event, emit
from bastion.authn.principal import Grant, Principal
from bastion.authn.sessions import session_by_id
from bastion.authz import Effect, Policy, Resource, Role, decide, enforce
from bastion.clock import monotonic
from bastion.errors import AuthenticationError, InvalidToken
from bastion.identity.grants import grants_of
from bastion.identity.policies import load_policy
from bastion.identity.tenants import tenant_by_id
from bastion.identity.users import user_by_id
from bastion.runtime import Runtime
from bastion.storage.schema import api_keys, custom_roles, service_accounts
from bastion.tokens import VerifiedAccessToken, parse_secret

LIVENESS_TTL = 0.5
T = TypeVar("T")
MAX_CREDENTIAL = 8192


class LivenessCache:
    """A tiny TTL map: credential state re-read from the database at most every TTL.

    Loads are single-flight: requests that miss the same key together share one
    database read instead of each starting their own (a burst of concurrent requests
    would otherwise stampede the database every TTL). ``clear()`` also discards what
    loads started before it would have stored.
    """

    def __init__(self, ttl: float = LIVENESS_TTL, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    async def get_or_load(self, key: str, load: Callable[[], T]) -> T:
        """The cached value, or ``load()`` run in a worker thread (once per key at a time)."""
        value = self.get(key)
        if value is not None:
            return value  # type: ignore[no-any-return]
        loading = self._loading.get(key)
        if loading is None:
            generation = self._generation
            loading = asyncio.ensure_future(run_in_threadpool(load))
            self._loading[key] = loading

            def settle(done: asyncio.Future[Any]) -> None:
                if self._loading.get(key) is done:
                    del self._loading[key]
                if (
                    not done.cancelled()
                    and done.exception() is None
                    and generation == self._generation
                ):
                    self.put(key, done.result())

            loading.add_done_callback(settle)
        return await asyncio.shield(loading)

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < monotonic():
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any, *, until: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds, or until the monotonic time ``until``."""
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (monotonic() + self.ttl if until is None else until, value)

    def expiry(self, key: Hashable) -> float:
        """When the entry for ``key`` stops being served (monotonic; 0.0 when absent)."""
        entry = self._entries.get(key)
        return 0.0 if entry is None else entry[0]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._loading.clear()
            self._generation += 1


@dataclass(frozen=True)
class LiveState:
    """What the database says now about a credential (None fields: not usable)."""

    usable: bool
    principal_id: str = ""
    name: str = ""
    tenant_id: str = ""
    tenant_name: str = ""
    grants: tuple[Grant, ...] = ()
    restricted: str | None = None
    key_id: str | None = None
    expires_at: datetime | None = None  # the API key's own expiry
    # Principals built and decisions taken for this state; they die with it (≤ LIVENESS_TTL).
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, hash=False)


_DEAD = LiveState(usable=False)
Memo = dict[Any, Any]


@dataclass(frozen=True, slots=True)
class _Authenticated:
    principal: Principal
    memo: Memo | None  # decisions remembered on the credential's live state
    state_key: str | None  # that live state's key in the LivenessCache
    not_after: datetime | None  # the credential's own expiry (token exp, key expiry)


@dataclass(frozen=True, slots=True)
class _Admitted:
    """A request that passed the whole door moments ago: same credential, action and
    resource. Served until the live state or the tenant rules behind it are re-read
    (≤ LIVENESS_TTL) and never past the credential's expiry."""

    principal: Principal
    not_after: datetime | None


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _cache(request: Request) -> LivenessCache:
    cache: LivenessCache = request.app.state.liveness
    return cache


async def _cached(request: Request, key: str, load: Callable[[Connection], T]) -> T:
    """``load`` from the database at most every ``LIVENESS_TTL`` per key, off the loop."""
    rt = runtime(request)

    def read() -> T:
        with rt.db.read() as conn:
            return load(conn)

    return await _cache(request).get_or_load(key, read)


def _session_state(
    session_id: str, subject: str, now: datetime
) -> Callable[[Connection], LiveState]:
    def load(conn: Connection) -> LiveState:
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
        )

    return load


def _key_state(key_hash: str, now: datetime) -> Callable[[Connection], LiveState]:
    def load(conn: Connection) -> LiveState:
        row = conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.expires_at,
                api_keys.c.revoked_at,
                service_accounts.c.id.label("account_id"),
                service_accounts.c.name,
                service_accounts.c.status,
                service_accounts.c.tenant_id,
            )
            .join(service_accounts, service_accounts.c.id == api_keys.c.service_account_id)
            .where(api_keys.c.key_hash == key_hash)
        ).first()
        if row is None or row.revoked_at is not None or row.status != "active":
            return _DEAD
        if row.expires_at is not None and now >= row.expires_at:
            return _DEAD
        tenant = tenant_by_id(conn, row.tenant_id)
        return LiveState(
            True,
            row.account_id,
            row.name,
            tenant.id,
            tenant.name,
            grants_of(conn, "service_account", row.account_id),
            None,
            row.id,
            row.expires_at,
        )

    return load


async def _from_access_token(request: Request, token: str) -> _Authenticated:
    rt = runtime(request)
    now = rt.clock.now()
    verified: VerifiedAccessToken | None = rt.token_cache.get(token, now=now)
    if verified is None:
        verified = rt.verify_access_token(token)
        rt.token_cache.put(token, verified)
    if verified.session_id is None:
        raise InvalidToken("The access token has no session.")
    state_key = "ses:" + verified.session_id
    state = await _cached(
        request, state_key, _session_state(verified.session_id, verified.subject, now)
    )
    if not state.usable:
        raise InvalidToken("The access token has been revoked or its user is not active.")
    known: Principal | None = state.memo.get(verified.jti)
    if known is not None:
        return _Authenticated(known, state.memo, state_key, verified.expires_at)
    principal = Principal(
        kind="user",
        id=state.principal_id,
        name=state.name,
        tenant_id=state.tenant_id,
        tenant_name=state.tenant_name,
        grants=state.grants,
        acr=verified.acr,
        amr=tuple(verified.amr),
        auth_time=verified.auth_time,
        session_id=verified.session_id,
        token_id=verified.jti,
        restricted=state.restricted,
    )
    state.memo[verified.jti] = principal
    return _Authenticated(principal, state.memo, state_key, verified.expires_at)


async def _from_api_key(request: Request, presented: str) -> _Authenticated:
    rt = runtime(request)
    key_hash = parse_secret(presented, "api_key")
    state_key = "key:" + key_hash
    state = await _cached(request, state_key, _key_state(key_hash, rt.clock.now()))
    if not state.usable:
        raise InvalidToken("The API key is not valid, expired or revoked.")
    known: Principal | None = state.memo.get("principal")
    if known is not None:
        return _Authenticated(known, state.memo, state_key, state.expires_at)
    principal = Principal(
        kind="service_account",
        id=state.principal_id,
        name=state.name,
        tenant_id=state.tenant_id,
        tenant_name=state.tenant_name,
        grants=state.grants,
        acr="aal1",
        amr=("swk",),
        token_id=state.key_id,
        auth_time=rt.clock.now(),
    )
    state.memo["principal"] = principal
    return _Authenticated(principal, state.memo, state_key, state.expires_at)


def _anonymous(request: Request) -> Principal:
    tenant = request.app.state.default_tenant
    return Principal(
        kind="anonymous",
        id="anonymous",
        name="anonymous",
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        grants=(Grant("viewer", tenant.id),),
        acr="aal1",
    )


async def authenticate(request: Request) -> Principal:
    """Bearer access token or ``api-key`` header → live Principal; raises AuthenticationError."""
    return (await _authenticate(request, *_credential_headers(request))).principal


def _credential_headers(request: Request) -> tuple[str | None, str | None]:
    """The first ``Authorization`` and ``api-key`` headers, in one pass over the raw list."""
    authorization = api_key = None
    for name, value in request.scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"api-key" and api_key is None:
            api_key = value.decode("latin-1")
    return authorization, api_key


async def _authenticate(
    request: Request, authorization: str | None, api_key: str | None
) -> _Authenticated:
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
        return await _from_access_token(request, token.strip())
    if api_key:
        if len(api_key) > MAX_CREDENTIAL:
            raise InvalidToken("The API key is malformed.")
        return await _from_api_key(request, api_key.strip())
    if runtime(request).settings.anonymous_read:
        return _Authenticated(_anonymous(request), None, None, None)
    raise AuthenticationError(
        "Authentication required: send 'Authorization: Bearer <access token>' "
        "or an 'api-key' header.",
    )


def _tenant_rules(tenant_id: str) -> Callable[[Connection], tuple[Policy, dict[str, Role]]]:
    def load(conn: Connection) -> tuple[Policy, dict[str, Role]]:
        policy = load_policy(conn, tenant_id)
        roles = {
            r.name: Role(
                name=r.name,
                description=r.description,
                permissions=frozenset(r.permissions),
                builtin=False,
            )
            for r in conn.execute(select(custom_roles).where(custom_roles.c.tenant_id == tenant_id))
        }
        return policy, roles

    return load


def _rules_key(tenant_id: str) -> str:
    return "rules:" + tenant_id


async def tenant_rules(request: Request, tenant_id: str) -> tuple[Policy, dict[str, Role]]:
    """The tenant's policy and custom roles (re-read at most every ``LIVENESS_TTL``)."""
    return await _cached(request, _rules_key(tenant_id), _tenant_rules(tenant_id))


def _bench_principal(request: Request) -> Principal:
    tenant = request.app.state.default_tenant
    return Principal(
        kind="user",
        id="bench",
        name="bench",
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        grants=(Grant("admin", tenant.id),),
        acr="aal3",
        auth_time=runtime(request).clock.now(),
    )


async def authorize(
    request: Request,
    action: str,
    *,
    collection: str | None = None,
    tenant_id: str | None = None,
) -> Principal:
    """Authenticate, then ``authz.decide`` on (principal, action, tenant + collection).

    Raises AuthenticationError (401), AuthorizationError (403) or StepUpRequired
    (401 + RFC 9470 header); an allowed call returns the principal.
    """
    rt = runtime(request)
    authorization, api_key = _credential_headers(request)
    if rt.settings.auth_disabled_for_benchmarks and not (authorization or api_key):
        # Bench only: a request without credentials skips the door; one with credentials
        # goes through it, so one server measures both (same process, same index).
        return _bench_principal(request)
    cache = _cache(request)
    admitted_key = _admitted_key(authorization, api_key, action, tenant_id, collection)
    admitted: _Admitted | None = cache.get(admitted_key) if admitted_key else None
    if admitted is not None and (admitted.not_after is None or rt.clock.now() < admitted.not_after):
        return admitted.principal
    found = await _authenticate(request, authorization, api_key)
    principal, memo = found.principal, found.memo
    target = tenant_id or principal.tenant_id
    policy, roles = await tenant_rules(request, principal.tenant_id)
    remembered = (action, target, collection)
    if memo is None or memo.get(remembered) is not policy:
        resource = Resource(tenant_id=target, collection=collection)
        decision = decide(
            principal, action, resource, policy=policy, now=rt.clock.now(), custom_roles=roles
        )
        if decision.effect is not Effect.ALLOW:
            event = decision_event(
                principal, decision, resource=_describe(resource), tenant_id=resource.tenant_id
            )
            if event is not None:
                await write_event(request, event)
            enforce(decision)
        # Only decisions that no clock can change are remembered (no max_age).
        if memo is None or policy.requirement(action).max_age is not None:
            return principal
        memo[remembered] = policy
    if admitted_key is not None and found.state_key is not None:
        until = min(cache.expiry(found.state_key), cache.expiry(_rules_key(principal.tenant_id)))
        cache.put(admitted_key, _Admitted(principal, found.not_after), until=until)
    return principal


def _admitted_key(
    authorization: str | None,
    api_key: str | None,
    action: str,
    tenant_id: str | None,
    collection: str | None,
) -> tuple[bytes, str, str | None, str | None] | None:
    """The credential (as its SHA-256: raw secrets are not kept) and what it asks for."""
    credential = authorization or api_key
    if not credential or (authorization and api_key):
        return None
    digest = hashlib.sha256(credential.encode("utf-8", "surrogateescape")).digest()
    return digest, action, tenant_id, collection


def _describe(resource: Resource) -> str:
    if resource.collection:
        return f"collection:{resource.collection}"
    return f"tenant:{resource.tenant_id}"


async def record(
    request: Request,
    principal: Principal,
    *,
    action: str,
    resource: str | None,
    outcome: str = "success",
    details: Mapping[str, int | str | bool | None] | None = None,
    reason: str | None = None,
) -> None:
    """Audit one data-plane or authorisation event (searches: ``AuditBuffer.count_search``)."""
    event = AuditEvent(
        action=action,
        outcome=outcome,
        actor=principal.id,
        tenant_id=principal.tenant_id,
        resource=resource,
        reason=reason,
        details=dict(details or {}),
    )
    await write_event(request, event)


async def write_event(request: Request, event: AuditEvent) -> None:
    """Append one event in its own transaction, off the event loop."""
    rt = runtime(request)

    def write() -> None:
        with rt.db.begin() as conn:
            emit(conn, event, now=rt.clock.now())

    await run_in_threadpool(write)


SearchKey = tuple[str, str, str | None, str]  # actor, tenant, resource, kind


class AuditBuffer:
    """Counts frequent events and appends them once a second, in one transaction.

    A search costs one dictionary update on its own path; every second each
    (caller, collection, kind) that searched becomes one ``points.searched`` event with
    the number of searches and of results. Sign-ins refused by a throttle are counted the
    same way, one ``login.failure`` (reason ``rate_limited``) per (limit, address) and
    second: a flood of refused attempts must not become a flood of writes, each waiting
    for the database's write lock. Flushed by the app's background task and at shutdown.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._searches: dict[SearchKey, list[int]] = {}
        self._refused: dict[tuple[str | None, str | None], int] = {}
        self._lock = threading.Lock()

    def count_refused_sign_in(self, scope: str | None, ip: str | None) -> None:
        with self._lock:
            self._refused[(scope, ip)] = self._refused.get((scope, ip), 0) + 1

    def count_search(
        self, principal: Principal, resource: str | None, kind: str, results: int
    ) -> None:
        key = (principal.id, principal.tenant_id, resource, kind)
        with self._lock:
            tally = self._searches.get(key)
            if tally is None:
                self._searches[key] = [1, results]
            else:
                tally[0] += 1
                tally[1] += results

    def flush(self) -> int:
        with self._lock:
            searches, self._searches = self._searches, {}
            refused, self._refused = self._refused, {}
        if not searches and not refused:
            return 0
        with self.rt.db.begin() as conn:
            now = self.rt.clock.now()
            for (scope, ip), attempts in refused.items():
                emit(
                    conn,
                    AuditEvent(
                        action="login.failure",
                        outcome="denied",
                        actor=None,  # the typed username is not kept (it may be a password)
                        tenant_id=None,
                        reason="rate_limited",
                        details={"scope": scope, "ip": ip, "attempts": attempts},
                    ),
                    now=now,
                )
            for (actor, tenant_id, resource, kind), (count, results) in searches.items():
                collection = resource.removeprefix("collection:") if resource else None
                event = AuditEvent(
                    action="points.searched",
                    outcome="success",
                    actor=actor,
                    tenant_id=tenant_id,
                    resource=resource,
                    details={
                        "collection": collection,
                        "kind": kind,
                        "searches": count,
                        "result_count": results,
                    },
                )
                emit(conn, event, now=now)
        return len(searches) + len(refused)
