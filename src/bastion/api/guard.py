"""The per-request door: headers → authenticate → ``authz.decide`` → enforce.

Routers call ``authorize(request, action, collection=…)`` and nothing else to check
access; no router looks at roles itself. Authentication is ``authn.request``; the
tenant's rules come from ``identity.rules`` (cached ≤ 0.5 s with the credential's live
state); a refused decision is recorded (``authz.denied`` / ``step_up.challenged``)
before it is answered; a request the door admitted moments ago is served from
``api.admitted``. Every request, admitted ones included, is then re-evaluated by the
risk engine (``authn.continuous``: a session used from a new place, or a volume burst,
gets the RFC 9470 challenge or is ended), in O(1) when nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from bastion.api.admitted import admit, admitted, admitted_key
from bastion.audit import decision_event, emit
from bastion.authn.continuous import ContinuousEvaluation
from bastion.authn.request import Credentials, RequestAuthenticator
from bastion.authz import Decision, Resource, decide, enforce
from bastion.clock import Clock
from bastion.domain import Principal
from bastion.errors import AuthenticationError, InvalidToken, StepUpRequired
from bastion.identity.rules import TenantRules, load_tenant_rules
from bastion.runtime import Runtime
from bastion.storage import Database


@dataclass
class Door:
    authn: RequestAuthenticator
    db: Database
    clock: Clock
    continuous: ContinuousEvaluation | None = field(default=None)

    async def authorize(
        self,
        credentials: Credentials,
        action: str,
        *,
        collection: str | None = None,
        tenant_id: str | None = None,
        ip: str | None = None,
    ) -> Principal:
        """The principal allowed to do ``action`` from ``ip``; raises AuthenticationError
        (401), AuthorizationError (403) or StepUpRequired (401 + RFC 9470 header)."""
        liveness = self.authn.liveness
        key = admitted_key(credentials, action, tenant_id, collection)
        known = admitted(liveness, key, self.clock)
        continuous = self.continuous
        if known is not None and (
            continuous is None
            or known.session_id is None
            or continuous.origin(known.session_id) is not None
        ):
            await self.evaluate(known, ip, None)
            return known
        found = await self.authn.authenticate(credentials)
        principal, memo = found.principal, found.memo
        rules = await self.rules(principal.tenant_id)
        if continuous is not None and found.origin is not None:
            continuous.origin(principal.session_id, found.origin)
        asked = (action, tenant_id or principal.tenant_id, collection)
        if memo is None or memo.get(asked) is not rules:
            resource = Resource(tenant_id=asked[1], collection=collection)
            decision = self.decide(principal, action, resource, rules)
            if not decision.allowed:
                await self.record(principal, decision, resource)
                enforce(decision)
            await self.evaluate(principal, ip, rules)
            # Only decisions that no clock can change are remembered (no max_age).
            if memo is None or rules.policy.requirement(action).max_age is not None:
                return principal
            memo[asked] = rules
        else:
            await self.evaluate(principal, ip, rules)
        if key is not None and found.state_key is not None:
            depends_on = (found.state_key, _rules_key(principal.tenant_id))
            admit(liveness, key, principal, not_after=found.not_after, depends_on=depends_on)
        return principal

    async def evaluate(
        self, principal: Principal, ip: str | None, rules: TenantRules | None
    ) -> None:
        """Continuous evaluation of this use of ``principal``'s credential (``authn.continuous``):
        nothing in the common case; else the RFC 9470 challenge, or the session ended."""
        continuous = self.continuous
        if continuous is None or principal.kind == "anonymous":
            return
        now = self.clock.now()
        policy = continuous.policy(principal.tenant_id, rules.policy if rules else None)
        challenge = continuous.check(principal, ip=ip, policy=policy, now=now)
        if challenge is None:
            return
        if continuous.to_record(principal, challenge):
            await run_in_threadpool(continuous.act, principal, challenge, ip=ip)
        if challenge.deny:
            self.forget(session_id=principal.session_id)
            raise InvalidToken("The session was ended: it is used from where it cannot be.")
        raise StepUpRequired(
            "This session needs a fresh sign-in: it is used from a new place or far beyond "
            "its usual volume.",
            acr=challenge.acr,
            max_age=max(0, int((now - challenge.since).total_seconds())),
        )

    def decide(
        self, principal: Principal, action: str, resource: Resource, rules: TenantRules
    ) -> Decision:
        return decide(
            principal,
            action,
            resource,
            policy=rules.policy,
            now=self.clock.now(),
            custom_roles=rules.roles,
        )

    async def rules(self, tenant_id: str) -> TenantRules:
        """The tenant's policy and custom roles (re-read at most every ``LIVENESS_TTL``)."""
        return await self.authn.cached(
            _rules_key(tenant_id), lambda conn: load_tenant_rules(conn, tenant_id)
        )

    async def record(self, principal: Principal, decision: Decision, resource: Resource) -> None:
        """Append the event of a refused decision in its own transaction, off the loop."""
        event = decision_event(
            principal, decision, resource=_describe(resource), tenant_id=resource.tenant_id
        )
        if event is None:
            return

        def write() -> None:
            with self.db.begin() as conn:
                emit(conn, event, now=self.clock.now())

        await run_in_threadpool(write)

    def forget(self, *, session_id: str | None = None, subject: str | None = None) -> None:
        """After a commit that ended a session or changed who may do what: re-read every
        live state now (cached ≤ 0.5 s otherwise), and forget this process's verified
        tokens of the session or subject."""
        self.authn.liveness.clear()
        if session_id is not None:
            self.authn.token_cache.discard_session(session_id)
        if subject is not None:
            self.authn.token_cache.discard_subject(subject)


def _rules_key(tenant_id: str) -> str:
    return "rules:" + tenant_id


def _describe(resource: Resource) -> str:
    if resource.collection:
        return f"collection:{resource.collection}"
    return f"tenant:{resource.tenant_id}"


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def door(request: Request) -> Door:
    found: Door = request.app.state.door
    return found


async def authorize(
    request: Request,
    action: str,
    *,
    collection: str | None = None,
    tenant_id: str | None = None,
) -> Principal:
    """Authenticate, then ``authz.decide`` on (principal, action, tenant + collection)."""
    credentials = Credentials.of(request.scope["headers"])
    client = request.scope.get("client")
    return await door(request).authorize(
        credentials,
        action,
        collection=collection,
        tenant_id=tenant_id,
        ip=client[0] if client else None,
    )


async def authenticate(request: Request) -> Principal:
    """Bearer access token or ``api-key`` header → live Principal; raises AuthenticationError."""
    found = await door(request).authn.authenticate(Credentials.of(request.scope["headers"]))
    return found.principal


async def tenant_rules(request: Request, tenant_id: str) -> TenantRules:
    """The tenant's policy and custom roles, as the door reads them (cached)."""
    return await door(request).rules(tenant_id)


def forget(request: Request, *, session_id: str | None = None, subject: str | None = None) -> None:
    """``Door.forget``: after a change to sessions, users, keys, roles or policy commits."""
    door(request).forget(session_id=session_id, subject=subject)


def meter(request: Request, principal: Principal, kind: str, points: int) -> None:
    """Count the points a query, scroll or export returned to ``principal`` (continuous
    evaluation of volume: ``authn.continuous``)."""
    continuous = door(request).continuous
    if continuous is not None:
        continuous.meter(principal, kind, points)


# -- the door as FastAPI sees it: security schemes, and authentication before the body -----

BEARER = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from /auth (EdDSA/ES256 JWT, keys at /.well-known/jwks.json).",
    auto_error=False,
)
API_KEY = APIKeyHeader(
    name="api-key",
    scheme_name="api-key",
    description="A service account's API key (bst_…), as Qdrant clients send it.",
    auto_error=False,
)
_PRINCIPAL = "bastion.principal"


async def signed_in(
    request: Request,
    _bearer: HTTPAuthorizationCredentials | None = Security(BEARER),
    _key: str | None = Security(API_KEY),
) -> Principal:
    """The dependency of every route that needs a credential (``Depends(signed_in)``): it
    names the security schemes in the OpenAPI document, and ``SignedInFirst`` has already
    authenticated the request before FastAPI read its body."""
    found: Principal | None = request.scope.get(_PRINCIPAL)
    return found if found is not None else await _credentialed(request)


async def _credentialed(request: Request) -> Principal:
    """``authenticate``, refusing the read-only anonymous principal: it may read
    collections, never use a route that needs a credential (``authz.decide`` agrees)."""
    principal = await authenticate(request)
    if principal.kind == "anonymous":
        raise AuthenticationError("Authentication is required.")
    return principal


def needs_credentials(route: APIRoute) -> bool:
    """Whether ``route`` depends on ``signed_in`` (directly or through its router)."""
    return signed_in in _calls(route.dependant)


def _calls(dependant: Dependant) -> set[Any]:
    found: set[Any] = set()
    for sub in dependant.dependencies:
        found.add(sub.call)
        found |= _calls(sub)
    return found


class SignedInFirst(APIRoute):
    """A route that authenticates before FastAPI reads and validates the body: an
    anonymous caller gets 401, never the field-level 422 that describes the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not needs_credentials(self):
            return handler

        async def authenticated_first(request: Request) -> Response:
            request.scope[_PRINCIPAL] = await _credentialed(request)
            return await handler(request)

        return authenticated_first


def door_router(**options: Any) -> APIRouter:
    """A router whose every route needs a credential, checked before the body is read."""
    return APIRouter(dependencies=[Depends(signed_in)], route_class=SignedInFirst, **options)
