"""Continuous evaluation (zero trust, issue 15): every authenticated request is re-scored
with what the door already has, and a session that turns risky is challenged or ended.

``ContinuousEvaluation.check`` (called by ``api.guard`` on every request, the admitted
fast path included) asks two in-memory, O(1) questions of ``bastion.risk``:

- ``SessionWatch``: is this session used from another address than before? Only a new
  address runs the signals (network and country lists, impossible travel since the last
  use or the sign-in, a country change since the sign-in); the verdict is remembered per
  (session, address), so the common request costs a dictionary lookup;
- ``VolumeMeter``: did this principal's query, scroll or export volume jump far above
  its own baseline (``meter`` counts the points after each response)?

A challenge is met only by a token authenticated after it was raised, with the level it
names (``Challenge.satisfied_by``): the user steps up (``POST /auth/step-up``), which
starts a new session from the new address. A *deny* verdict ends the session.
``act`` records a challenge once — the risk event (``risk_events``, shown by
``GET /admin/risk/events``) and ``session.risk_challenged`` / ``session.risk_revoked``
in the audit log, with the reasons — in one transaction, and ends the session on a deny.

``housekeeping`` (the app's lifespan, off the request path) saves finished minutes of
usage, reloads the baselines every few minutes and prunes old risk rows hourly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from bastion.audit import record
from bastion.authn.adaptive import risk_policy
from bastion.authn.sessions import end_session
from bastion.authz import Policy
from bastion.clock import Clock
from bastion.domain import Principal
from bastion.risk import Challenge, RiskDecision, RiskEngine, RiskPolicy, SessionWatch, VolumeMeter
from bastion.risk.store import load_baselines, prune, record_session_decision, save_usage
from bastion.storage import Database

__all__ = ["ContinuousEvaluation", "SignInOrigin"]

BASELINE_EVERY = timedelta(minutes=5)
PRUNE_EVERY = timedelta(hours=1)
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class SignInOrigin:
    """Where and when a session signed in (the session row)."""

    ip: str | None
    at: datetime | None


class ContinuousEvaluation:
    """Per-process state of the continuous evaluation (sessions seen, volume counters)."""

    def __init__(self, engine: RiskEngine, *, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.engine = engine
        self.sessions = SessionWatch(engine, on_decision=self._noted)
        self.volume = VolumeMeter()
        self._policies: dict[str, tuple[Policy, RiskPolicy]] = {}
        self._origins: dict[str, SignInOrigin] = {}
        self._pending: dict[str, RiskDecision] = {}  # session decisions not yet recorded
        self._recorded_bursts: set[tuple[str, datetime]] = set()
        self._lock = threading.Lock()
        self._baselines_at: datetime | None = None
        self._pruned_at: datetime | None = None

    # -- request path ------------------------------------------------------------------

    def policy(self, tenant_id: str, policy: Policy | None = None) -> RiskPolicy:
        """The tenant's risk policy: from ``policy`` (the tenant rules the door just read),
        else the last one seen for the tenant (the admitted fast path)."""
        known = self._policies.get(tenant_id)
        if policy is None:
            return known[1] if known is not None else risk_policy(Policy())
        if known is None or known[0] is not policy:
            known = (policy, risk_policy(policy))
            self._policies[tenant_id] = known
        return known[1]

    def origin(
        self, session_id: str | None, origin: SignInOrigin | None = None
    ) -> SignInOrigin | None:
        """Remember (``origin`` given) or recall where a session signed in."""
        if session_id is None:
            return None
        if origin is not None:
            if len(self._origins) >= 100_000:
                self._origins.clear()
            self._origins[session_id] = origin
            return origin
        return self._origins.get(session_id)

    def check(
        self, principal: Principal, *, ip: str | None, policy: RiskPolicy, now: datetime
    ) -> Challenge | None:
        """The challenge this request gets, or None (the common case, in O(1))."""
        session_id = principal.session_id
        if session_id is not None:
            origin = self._origins.get(session_id) or SignInOrigin(None, None)
            found = self.sessions.check(
                key=session_id,
                ip=ip,
                origin_ip=origin.ip,
                origin_at=origin.at,
                policy=policy,
                now=now,
            )
            if found is not None and not found.satisfied_by(
                acr=principal.acr, auth_time=principal.auth_time
            ):
                return found
        return self.volume.check(
            principal.id, acr=principal.acr, auth_time=principal.auth_time, now=now, policy=policy
        )

    def meter(self, principal: Principal, kind: str, points: int) -> None:
        """Count ``points`` a ``kind`` request (query, scroll, export) returned."""
        if points > 0:
            self.volume.add(
                principal.id,
                kind,
                points,
                now=self.clock.now(),
                policy=self.policy(principal.tenant_id),
            )

    def _noted(self, key: str, decision: RiskDecision) -> None:
        if len(self._pending) >= MAX_PENDING:  # decisions met before they were recorded
            self._pending.clear()
        self._pending[key] = decision

    def to_record(self, principal: Principal, challenge: Challenge) -> bool:
        """Whether ``challenge`` is new (not recorded yet): a session verdict once per
        (session, address), a burst once per flag."""
        decision = challenge.decision
        with self._lock:
            key = principal.session_id
            if key is not None and self._pending.get(key) is decision:
                del self._pending[key]
                return True
            burst = (principal.id, challenge.since)
            volume = any(reason.code.startswith("volume_") for reason in decision.reasons)
            if not volume or burst in self._recorded_bursts:
                return False
            if len(self._recorded_bursts) >= MAX_PENDING:
                self._recorded_bursts.clear()
            self._recorded_bursts.add(burst)
            return True

    # -- acting on a challenge (in a thread: it writes) ---------------------------------

    def act(self, principal: Principal, challenge: Challenge, *, ip: str | None) -> None:
        """Record a new challenge (risk event + audit, with the reasons) and, on a deny,
        end the session, in one transaction."""
        decision = challenge.decision
        with self.db.begin() as conn:
            now = self.clock.now()
            record_session_decision(
                conn,
                at=now,
                tenant_id=principal.tenant_id,
                principal_id=principal.id,
                ip=ip,
                decision=decision,
            )
            record(
                conn,
                "session.risk_revoked" if challenge.deny else "session.risk_challenged",
                outcome="denied" if challenge.deny else "challenge",
                actor=principal.id,
                tenant_id=principal.tenant_id,
                resource=f"session:{principal.session_id}" if principal.session_id else None,
                reason=decision.reasons[0].code if decision.reasons else None,
                details={
                    "session_id": principal.session_id,
                    "ip": ip,
                    "required_acr": None if challenge.deny else challenge.acr,
                    **decision.audit_details(),
                },
                now=now,
            )
            if challenge.deny and principal.session_id is not None:
                end_session(
                    conn,
                    principal.session_id,
                    reason="risk_denied",
                    action="session.revoked",
                    actor=principal.id,
                    now=now,
                )

    # -- housekeeping (off the request path) --------------------------------------------

    def housekeeping(self) -> None:
        """Save finished minutes of usage; every few minutes reload the baselines of the
        principals seen; every hour forget old risk rows (``risk.store.prune``)."""
        now = self.clock.now()
        principals = self.volume.principals()  # active lately (drain forgets idle ones)
        usage = self.volume.drain(now=now)
        due_baselines = self._baselines_at is None or now - self._baselines_at >= BASELINE_EVERY
        due_prune = self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY
        if not usage and not due_baselines and not due_prune:
            return
        with self.db.begin() as conn:
            if usage:
                save_usage(conn, usage)
            if due_prune:
                prune(conn, now=now)
                self._pruned_at = now
        if due_baselines:
            if principals:
                with self.db.read() as conn:
                    baselines = load_baselines(
                        conn,
                        principal_ids=principals,
                        now=now,
                        policy=risk_policy(Policy()),
                    )
                self.volume.set_baselines(baselines)
            self._baselines_at = now
