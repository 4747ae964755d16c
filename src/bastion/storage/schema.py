"""Tables of the security core (identity, factors, sessions, tokens, policy, audit).

One ``metadata`` for the whole installation; the vector engine adds its tables in
``bastion.storage.vector_schema``. Alembic migrations in ``storage/migrations`` create them.
Only portable SQL: the same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bastion.storage.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("password_hash", String(255)),
    Column("status", String(16), nullable=False),  # active | suspended | deleted
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # active | deleted
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_service_accounts_tenant_name"),
)

# A role granted to a principal in a tenant, optionally narrowed to collections
# (exact names or prefixes ending in "*").
role_grants = Table(
    "role_grants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("principal_kind", String(16), nullable=False),  # user | service_account
    Column("principal_id", String(40), nullable=False),
    Column("role", String(64), nullable=False),
    Column("collections", JSON),  # null = every collection of the tenant
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_role_grants_principal", "principal_kind", "principal_id"),
)

custom_roles = Table(
    "custom_roles",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("permissions", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_custom_roles_tenant_name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "service_account_id",
        String(40),
        ForeignKey("service_accounts.id"),
        nullable=False,
        index=True,
    ),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex
    Column("hint", String(16), nullable=False),  # last characters, for humans
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Column("last_used_at", UTCDateTime()),
)

# One row per authenticator a user holds. Secrets are sealed (AES-GCM) or absent.
factors = Table(
    "factors",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False, index=True),
    Column("type", String(32), nullable=False),  # totp | webauthn | sms | email | push …
    Column("name", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # pending | active
    Column("sealed_secret", LargeBinary),  # AES-GCM(nonce || ciphertext)
    Column("public_data", JSON),  # e.g. WebAuthn credential id, public key, flags
    Column("credential_id", String(512), unique=True),  # WebAuthn credential id (b64url)
    Column("replay_counter", BigInteger, nullable=False, default=0),  # TOTP step / sign count
    # WebAuthn only (NULL otherwise): BE at registration, never updated; authenticator model.
    Column("backup_eligible", Boolean),
    Column("aaguid", String(36)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("activated_at", UTCDateTime()),
    Column("last_used_at", UTCDateTime()),
    # Where it was added (``authn.enrollment.Origin``): a factor never satisfies the
    # step-up of the session that added it, and /me/factors shows when and from where.
    Column("added_session_id", String(40)),
    Column("added_ip", String(64)),
    Column("added_user_agent", String(256)),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
    Column("added_session_id", String(40)),  # never satisfies that session's step-up
)

# A login (or step-up) in progress: single use, short-lived, dies after N wrong codes.
login_transactions = Table(
    "login_transactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False, index=True),
    Column("purpose", String(16), nullable=False),  # login | step_up
    Column("session_id", String(40)),  # the session being stepped up
    Column("status", String(16), nullable=False),  # pending | completed | dead
    Column("verified", JSON, nullable=False),  # list of {"method", "amr", "category"}
    Column("required_acr", String(8), nullable=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("challenge", JSON),  # per-method pending challenge (WebAuthn, push, OTP)
    Column("context", JSON),  # risk context: ip, user agent, device, score
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# A WebAuthn challenge not bound to a login transaction (those live in its ``challenge``):
# a registration (bound to the user and session) or a passkey sign-in that starts with no
# username. Single use (deleted when answered, right or wrong), 5 minutes at most.
webauthn_challenges = Table(
    "webauthn_challenges",
    metadata,
    Column("id", String(64), primary_key=True),  # "ptx_…" is a passkey transaction id
    Column("purpose", String(16), nullable=False),  # register | passkey
    Column("user_id", String(40), index=True),  # None for a passkey sign-in
    Column("session_id", String(40)),
    Column("challenge", String(64), nullable=False, unique=True),  # base64url, ≥ 16 bytes
    Column("details", JSON, nullable=False),  # what the options asked (user verification…)
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# Token and checkpoint signing keys of a PostgreSQL installation (identity.key_table), in
# order: the last is active. The private key is sealed with the master key (AES-GCM, bound
# to its kid). The embedded installation keeps them as files and leaves this table empty.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("kid", String(64), nullable=False, unique=True),  # RFC 7638 thumbprint
    Column("sealed_private_key", LargeBinary, nullable=False),  # PKCS#8 DER, sealed
    Column("created_at", UTCDateTime(), nullable=False),
    Column("retired_at", UTCDateTime()),
)

# One row per failed sign-in, kept for the throttle window: every worker process counts
# the same failures. The key is a keyed fingerprint (authn.throttle), never the typed value.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scope", String(16), nullable=False),  # account | address
    Column("key_hash", String(64), nullable=False),  # HMAC-SHA256 hex of username or address
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_login_failures_scope_key_hash_at", "scope", "key_hash", "at"),
    Index("ix_login_failures_scope_at", "scope", "at"),  # pruning expired rows
)

# A session is a refresh-token family: rotating refresh tokens share it.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False, index=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("acr", String(8), nullable=False),
    Column("amr", JSON, nullable=False),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("restricted", String(32)),  # e.g. "enrollment" for enrollment_required tokens
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("revoked_reason", String(64)),
    Column("user_agent", String(256)),
    Column("ip", String(64)),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("session_id", String(40), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),  # rotated: presenting it again is reuse
)

# One-time links: first-admin setup and enrollment of users created without a password.
setup_tokens = Table(
    "setup_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("purpose", String(16), nullable=False),  # bootstrap | enrollment
    Column("user_id", String(40), ForeignKey("users.id")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
)

# Assurance and MFA policy document per tenant (authz reads it).
policies = Table(
    "policies",
    metadata,
    Column("tenant_id", String(40), ForeignKey("tenants.id"), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Append-only, hash-chained. The database refuses UPDATE and DELETE (triggers).
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("tenant_id", String(40), index=True),
    Column("actor", String(128)),
    Column("action", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),  # success | failure | denied | challenge
    Column("resource", String(256)),
    Column("reason", String(64)),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True),  # the event seq the checkpoint covers
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kid", String(64), nullable=False),
    Column("signature", Text, nullable=False),  # base64url Ed25519 over "seq:hash"
)

# A web console session (bastion.console): keyed by the SHA-256 of the opaque cookie value,
# it holds the Bastion session's tokens and the console's own state sealed with the master
# key (AES-GCM), so neither the browser nor a copy of the database holds a usable token.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 hex of the cookie value
    Column("user_id", String(40), index=True),  # None while a sign-in is in progress
    Column("stage", String(16), nullable=False),  # signin | enrolment | active
    Column("acr", String(8)),
    Column("tokens", LargeBinary, nullable=False),  # sealed JSON: access + refresh token
    Column("state", LargeBinary, nullable=False),  # sealed JSON: CSRF secret, pending action…
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),  # absolute lifetime
    Column("idle_seconds", Integer, nullable=False),
    Column("refresh_lease_until", UTCDateTime()),  # one request at a time rotates the tokens
)
