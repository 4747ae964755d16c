"""Typed audit events: the registry of actions, and ``AuditEvent`` which keeps secrets out.

Every security-relevant act is one event of a registered action, with one of that
action's outcomes and only its registered detail keys. An event is checked when it is
built, before the change it records is written (the two share one transaction):

- what the *code* decides is checked strictly, and a mistake raises
  ``InvalidAuditEvent``: an unregistered action, outcome or detail key, a detail key that
  names secret material (password, secret, token, code, key, seed …) unless it is an
  identifier or a count (``key_id``, ``token_id``), a ``reason`` that is not a machine
  code, a value that is not JSON;
- what a *caller* chose (a collection name, a username, an address) never makes an event
  fail: a string that looks like a secret (Bastion's ``bst_`` prefixed secrets, JWTs
  ``eyJ…``, password hashes, PEM keys, otpauth URIs) is replaced by
  ``[redacted sha256:…]`` (a hash prefix, so two such names can still be told apart),
  text too long for its column is cut and marked with the hash of the whole, invalid
  Unicode is replaced, and details too large are replaced by ``{"truncated": true}``.
  So an attacker cannot choose a name that makes an act go unrecorded.

Routes that record user-typed text that may be a password (the username of a failed
login) pass it through ``safe_text`` first, which keeps no hash at all.

Conventions: ``actor`` is the principal id (``usr_…``, ``sa_…``) or ``None`` before
authentication; ``resource`` is ``kind:id`` (``collection:docs``, ``user:usr_…``,
``key:key_…``, ``tenant:tnt_…``, ``role:auditor``, ``policy``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from bastion.audit.chain import canonical_json
from bastion.authz import Decision, Effect
from bastion.domain import Principal
from bastion.requestid import stamped

Outcome = Literal["success", "failure", "denied", "challenge"]
OUTCOMES: tuple[str, ...] = ("success", "failure", "denied", "challenge")

COMMON_DETAILS = frozenset({"ip", "user_agent", "request_id", "truncated"})
MAX_DETAILS_BYTES = 16_384
MAX_DEPTH = 4
_LIMITS = {"action": 64, "actor": 128, "tenant_id": 40, "resource": 256, "reason": 64}
_REASON = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


class InvalidAuditEvent(ValueError):
    """A programming error: an event that is unregistered, malformed or carries a secret.

    The message names the offending key or field, never its value.
    """


@dataclass(frozen=True)
class EventSpec:
    action: str
    description: str
    outcomes: frozenset[str]
    details: frozenset[str]


def _spec(action: str, description: str, outcomes: str, details: str = "") -> EventSpec:
    return EventSpec(action, description, frozenset(outcomes.split()), frozenset(details.split()))


_SPECS = (
    # Authentication
    _spec("login.success", "A login finished with tokens.", "success",
          "username acr amr methods session_id risk_level risk_score risk_reasons"),
    _spec("login.failure", "A login was refused (reason: invalid_credentials, invalid_code, "
          "risk_denied, rate_limited, transaction_expired …; rate_limited: one event per "
          "limit, address and second, attempts = how many were refused).", "failure denied",
          "username method attempts failures retry_after scope risk_level risk_score "
          "risk_reasons"),
    _spec("login.mfa_required", "A password was accepted; a second factor is asked.",
          "challenge", "username methods risk_level risk_score risk_reasons"),
    _spec("login.enrollment_required", "A user without a factor got a restricted token.",
          "challenge", "username session_id"),
    _spec("factor.enrolled", "A factor was added (pending until activated); session_id, ip "
          "and user_agent say where from.", "success", "factor_id factor_type name session_id"),
    _spec("factor.activated", "A pending factor was activated (failure: a wrong code).",
          "success failure", "factor_id factor_type session_id failures retry_after"),
    _spec("factor.removed", "A factor was removed.", "success",
          "factor_id factor_type user_id session_id"),
    _spec("factor.renamed", "A factor was renamed by its owner (not a sign-in change).",
          "success", "factor_id before after session_id"),
    _spec("webauthn.registered", "A security key or passkey was registered (active at once); "
          "backup_eligible: a synced passkey (aal2 at most) or a device-bound key.", "success",
          "factor_id factor_type name session_id backup_eligible user_verified aaguid "
          "attestation_format attestation_trusted"),
    _spec("webauthn.refused", "A WebAuthn registration or assertion was refused (reason: "
          "wrong_origin, wrong_rp_id, challenge_expired, challenge_mismatch, "
          "algorithm_not_allowed, duplicate_credential, unknown_credential, "
          "malformed_credential, invalid_signature, counter_regression, "
          "backup_eligibility_changed …); suspicion: possible_clone or "
          "backup_eligibility_changed.", "failure",
          "ceremony factor_id suspicion other_account session_id"),
    _spec("factor.locked", "Too many wrong codes of a guessable method (TOTP, recovery codes): "
          "it is locked for retry_after seconds (reason account_limit: every guessable method "
          "of the account, until a reset).", "failure",
          "method failures retry_after activation"),
    _spec("recovery_code.used", "A recovery code was spent.", "success", "remaining"),
    _spec("recovery_codes.regenerated", "All recovery codes were replaced.", "success",
          "count session_id"),
    _spec("token.refreshed", "A refresh token was rotated.", "success failure", "session_id"),
    _spec("token.refresh_reuse_detected", "A rotated refresh token came back; its family "
          "was revoked.", "denied", "session_id"),
    _spec("token.revoked", "A token was revoked (RFC 7009).", "success",
          "kind session_id token_id"),
    _spec("session.logout", "A session logged out.", "success", "session_id"),
    _spec("session.revoked", "A session was ended by its user or an admin (reason "
          "signed_out_everywhere: every session of the user, count of them, console "
          "sessions too).", "success", "session_id user_id count console_sessions"),
    _spec("device.remembered", "A remembered-device credential was issued at a full MFA "
          "sign-in (a possession factor for later sign-ins; the credential is never "
          "recorded).", "success", "device_id name expires_at session_id"),
    _spec("device.revoked", "Remembered devices were revoked by their user or an admin "
          "(device_id null: all of the user's; reason password_changed, "
          "signed_out_everywhere, user_suspended, user_deleted, factors_reset when the "
          "credentials that earned them ended).", "success", "device_id user_id count"),
    _spec("session.risk_challenged", "Continuous evaluation asked a session for a step-up "
          "(RFC 9470): used from a new country or network, impossible travel between two "
          "uses, or a query/scroll/export burst far above the principal's baseline.",
          "challenge", "session_id required_acr risk_level risk_score risk_reasons"),
    _spec("session.risk_revoked", "Continuous evaluation ended a session (a deny verdict).",
          "denied", "session_id required_acr risk_level risk_score risk_reasons"),
    _spec("step_up.started", "A step-up transaction began (scored by the risk engine).",
          "success", "session_id required_acr methods risk_level risk_score risk_reasons"),
    _spec("step_up.challenged", "An action asked for stronger or fresher authentication "
          "(RFC 9470).", "challenge", "permission required_acr max_age acr"),
    _spec("step_up.success", "A step-up finished with new tokens (acr below required_acr: "
          "nothing offered could reach it, e.g. a synced passkey asked for aal3).", "success",
          "session_id acr amr required_acr"),
    _spec("step_up.failure", "A step-up was refused (failure: a wrong code or a refused "
          "assertion; denied: the risk engine refused it, reason risk_denied or "
          "risk_no_factor).", "failure denied",
          "method attempts failures retry_after session_id required_acr risk_level "
          "risk_score risk_reasons"),
    _spec("api_key.rejected", "An unknown, expired or revoked API key was presented (one "
          "event per key, reason and second; attempts = how many).", "denied",
          "key_id service_account_id attempts"),
    # Authorisation
    _spec("authz.denied", "decide() denied an action.", "denied", "permission"),
    # Administration (before/after hold roles and status, never secrets)
    _spec("api_key.created", "A service-account key was created.", "success",
          "key_id service_account_id expires_at"),
    _spec("api_key.revoked", "A service-account key was revoked.", "success",
          "key_id service_account_id"),
    _spec("user.created", "A user was created.", "success failure",
          "user_id username roles status tenant enrollment"),
    _spec("user.updated", "A user's roles or status changed.", "success failure",
          "user_id username before after"),
    _spec("user.password_set", "A user chose a password with an enrollment link.", "success",
          "user_id username"),
    _spec("user.password_changed", "A user changed their own password (failure: the current "
          "password was wrong); their other sessions and remembered devices ended.",
          "success failure", "user_id session_id sessions_revoked devices_revoked"),
    _spec("user.unlocked", "An administrator cleared a user's failed sign-in and second-factor "
          "counts.", "success", "user_id username sign_in_failures second_factor_failures"),
    _spec("user.suspended", "A user was suspended.", "success", "user_id username before after"),
    _spec("user.deleted", "A user was deprovisioned.", "success", "user_id username before"),
    _spec("user.factors_reset", "An admin removed every factor of a user.", "success",
          "user_id username factors_removed"),
    _spec("service_account.created", "A service account was created.", "success",
          "service_account_id name roles collections"),
    _spec("service_account.deleted", "A service account was deleted.", "success",
          "service_account_id name"),
    _spec("role.created", "A custom role was created.", "success", "role permissions"),
    _spec("role.deleted", "A custom role was deleted.", "success", "role"),
    _spec("policy.updated", "The MFA/assurance policy changed (failure admin_lockout: it "
          "would require aal3 for administration while admins hold no aal3-capable factor).",
          "success failure", "changes admins"),  # changes: [{"field", "before", "after"}]
    _spec("tenant.created", "A tenant was created.", "success", "name"),
    # Data plane
    _spec("collection.created", "A collection was created.", "success",
          "collection size distance vectors"),
    _spec("collection.updated", "A collection's parameters changed (update_collection).",
          "success", "collection full_scan_threshold"),
    _spec("alias.created", "A collection alias was created.", "success", "collection alias"),
    _spec("alias.deleted", "A collection alias was deleted.", "success", "collection alias"),
    _spec("alias.renamed", "A collection alias was renamed.", "success",
          "collection alias new_alias"),
    _spec("collection.deleted", "A collection was deleted.", "success", "collection"),
    _spec("index.created", "A payload index was created.", "success",
          "collection field schema"),
    _spec("index.deleted", "A payload index was deleted.", "success", "collection field"),
    _spec("points.upserted", "Points were upserted.", "success", "collection count"),
    _spec("points.deleted", "Points were deleted.", "success", "collection count by_filter"),
    _spec("points.payload_updated", "Payloads were set, overwritten, cleared or had keys "
          "removed (operation: set, overwrite, delete, clear).", "success",
          "collection operation count by_filter"),
    _spec("points.vectors_updated", "Vectors of existing points were replaced or deleted "
          "(operation: update, delete; update_vectors / delete_vectors).", "success",
          "collection operation count by_filter"),
    _spec("points.exported", "A collection was exported.", "success", "collection count"),
    _spec("collection.backed_up", "A collection was backed up (GET /collections/{name}/backup, "
          "`bastion backup`): its points and the file's SHA-256 (complete false: the stream "
          "was cut short).", "success", "collection count sha256 complete"),
    _spec("collection.restored", "A backup file was restored into a new collection (failure: "
          "the file was refused or could not be loaded, and nothing was kept).",
          "success failure", "collection source count sha256"),
    _spec("points.searched", "Searches or queries ran (one event per caller, collection and "
          "second: how many, and how many results).", "success",
          "collection kind limit result_count searches"),
    # The audit log itself
    _spec("audit.exported", "The audit log was exported.", "success", "count filters"),
    _spec("audit.verified", "The chain was verified.", "success failure",
          "ok events first_broken_seq checkpoints_checked"),
)  # fmt: skip

# Secret detection. Substrings anywhere in a key, and whole words of a key.
_SECRET_SUBSTRINGS = (
    "password", "passwd", "passphrase", "secret", "token", "credential", "private",
    "apikey", "jwt", "cookie", "authorization", "bearer",
)  # fmt: skip
_SECRET_WORDS = frozenset(
    {"pwd", "code", "codes", "key", "keys", "seed", "otp", "totp", "pin", "signature", "sig"}
)
# A key naming an identifier or a count of secret material is not the material itself.
_SAFE_LAST_WORDS = frozenset({"id", "ids", "count", "kind", "type"})
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_SECRET_VALUE = re.compile(
    r"(?<![A-Za-z0-9])bst_"  # Bastion's opaque secrets: bst_sk_, bst_rt_, bst_setup_ …
    r"|^eyJ"  # a JWT or any base64url JSON header
    r"|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"  # a JWT inside text
    r"|\$argon2|\$2[aby]\$|\$scrypt\$|\$pbkdf2"  # password hashes
    r"|-----BEGIN"  # PEM keys
    r"|otpauth://"  # a TOTP seed URI
)


def secret_looking_key(key: str) -> bool:
    """Whether a detail key names secret material (``password``, ``api_key``, ``codes``)."""
    lowered = key.lower()
    words = [word for word in _WORD_SPLIT.split(lowered) if word]
    if words and words[-1] in _SAFE_LAST_WORDS:
        return False
    return any(part in lowered for part in _SECRET_SUBSTRINGS) or any(
        word in _SECRET_WORDS for word in words
    )


def secret_looking_value(value: str) -> bool:
    """Whether a string looks like a secret Bastion issues or stores."""
    return _SECRET_VALUE.search(value) is not None


def safe_text(value: str | None, *, limit: int = 128) -> str | None:
    """User-typed text fit for an event: ``[redacted]`` if it looks secret, else truncated."""
    if value is None:
        return None
    if secret_looking_value(value):
        return "[redacted]"
    cleaned = value.encode("utf-8", "replace").decode("utf-8")
    return cleaned[:limit]


def _check_registry(specs: tuple[EventSpec, ...]) -> Mapping[str, EventSpec]:
    table: dict[str, EventSpec] = {}
    for spec in specs:
        if spec.action in table:
            raise ValueError(f"audit action {spec.action} registered twice")
        if not spec.outcomes or not spec.outcomes <= set(OUTCOMES):
            raise ValueError(f"audit action {spec.action}: bad outcomes")
        bad = sorted(key for key in spec.details | COMMON_DETAILS if secret_looking_key(key))
        if bad:
            raise ValueError(f"audit action {spec.action}: secret-looking detail keys {bad}")
        table[spec.action] = spec
    return MappingProxyType(table)


EVENTS: Mapping[str, EventSpec] = _check_registry(_SPECS)


def _digest(value: str) -> str:
    """A short, domain-separated hash: tells two redacted values apart, reveals neither."""
    data = b"bastion:audit-redaction:" + value.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:12]


_RESOURCE_KIND = re.compile(r"^[a-z_]{1,32}:")


def redact(value: str) -> str:
    """``value`` with anything that looks like a secret replaced (kept as is otherwise).

    A ``kind:`` prefix (``collection:bst_…``) is kept when only what follows it looks
    secret, so the event still says what kind of thing was acted on.
    """
    if not secret_looking_value(value):
        return value
    kind = _RESOURCE_KIND.match(value)
    if kind is not None and secret_looking_value(value[kind.end() :]):
        return f"{kind.group()}[redacted sha256:{_digest(value)}]"
    return f"[redacted sha256:{_digest(value)}]"


def _text(value: str, limit: int | None = None) -> str:
    """Caller-chosen text fit for the log: valid Unicode, secrets redacted, within limit."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    value = redact(value)
    if limit is not None and len(value) > limit:
        mark = f"…[sha256:{_digest(value)}]"
        value = value[: limit - len(mark)] + mark
    return value


def _normalise(value: Any, path: str, depth: int) -> Any:
    """A JSON-ready deep copy; redacts secret-looking text; refuses odd types and NaN."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidAuditEvent(f"detail {path} is not a finite number")
        return value
    if isinstance(value, str):
        return _text(value)
    if depth >= MAX_DEPTH:
        raise InvalidAuditEvent(f"detail {path} is nested too deeply")
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return [_normalise(item, f"{path}[]", depth + 1) for item in items]
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidAuditEvent(f"detail {path} has a non-string key")
            if secret_looking_key(key):
                raise InvalidAuditEvent(f"detail key {path}.{_text(key, 64)} names secret material")
            result[_text(key, 64)] = _normalise(item, f"{path}.{key}", depth + 1)
        return result
    raise InvalidAuditEvent(f"detail {path} is a {type(value).__name__}, not JSON")


@dataclass(frozen=True)
class AuditEvent:
    """One checked event, ready for ``audit.log.emit`` (details are a JSON-ready copy;
    caller-chosen text redacted and cut, see the module docstring)."""

    action: str
    outcome: str
    actor: str | None
    tenant_id: str | None
    resource: str | None = None
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        spec = EVENTS.get(self.action)
        if spec is None:
            raise InvalidAuditEvent(f"unregistered audit action {self.action!r}")
        if self.outcome not in spec.outcomes:
            raise InvalidAuditEvent(
                f"{self.action}: outcome {self.outcome!r} is not one of {sorted(spec.outcomes)}"
            )
        if self.reason is not None and (
            not isinstance(self.reason, str) or not _REASON.fullmatch(self.reason)
        ):
            raise InvalidAuditEvent(f"{self.action}: reason must be a snake_case code")
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise InvalidAuditEvent(f"{self.action}: {name} must be a non-empty string")
            object.__setattr__(self, name, _text(value, limit))
        if not isinstance(self.details, Mapping):
            raise InvalidAuditEvent(f"{self.action}: details must be a mapping")
        unknown = sorted(
            "[redacted]" if secret_looking_value(str(key)) else str(key)
            for key in self.details
            if key not in spec.details | COMMON_DETAILS
        )
        if unknown:
            raise InvalidAuditEvent(f"{self.action}: unregistered detail keys {unknown}")
        normalised = _normalise(stamped(self.details), "details", 0)  # + request_id
        if len(canonical_json(normalised)) > MAX_DETAILS_BYTES:
            normalised = {"truncated": True}
        object.__setattr__(self, "details", MappingProxyType(normalised))


def decision_event(
    principal: Principal,
    decision: Decision,
    *,
    resource: str | None = None,
    tenant_id: str | None = None,
) -> AuditEvent | None:
    """The event a route emits for a DENY (``authz.denied``) or STEP_UP (``step_up.challenged``)."""
    tenant = tenant_id if tenant_id is not None else principal.tenant_id
    actor = principal.id or None
    if decision.effect is Effect.ALLOW:
        return None
    if decision.effect is Effect.STEP_UP:
        return AuditEvent(
            "step_up.challenged",
            "challenge",
            actor,
            tenant,
            resource,
            decision.code,
            {
                "permission": safe_text(decision.action, limit=64),
                "required_acr": decision.required_acr,
                "max_age": decision.max_age,
                "acr": principal.acr,
            },
        )
    return AuditEvent(
        "authz.denied", "denied", actor, tenant, resource, decision.code,
        {"permission": safe_text(decision.action, limit=64)},
    )  # fmt: skip
