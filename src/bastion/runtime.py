"""Everything a running Bastion holds, opened once: settings, clock, database, keys.

The HTTP app and the CLI both build a ``Runtime``; the CLI does so on a stopped
server too, against the same data directory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from argon2 import PasswordHasher

from bastion.audit import Checkpointer, CheckpointExporter, build_sinks
from bastion.authn.login import AuthnDeps
from bastion.authn.sessions import SessionIssuer
from bastion.clock import Clock, SystemClock
from bastion.config import Settings
from bastion.datadir import prepare as prepare_data_dir
from bastion.errors import ConfigurationError, UnknownSigningKey
from bastion.factors.password import make_hasher
from bastion.factors.webauthn import (
    RelyingParty,
    attestation_policy_from_settings,
    relying_party_from_settings,
)
from bastion.identity.tenants import ensure_default_tenant
from bastion.risk import RiskEngine
from bastion.sealing import Sealer, load_or_create_master_key, master_key_from_setting
from bastion.storage import Database
from bastion.tokens import KeyRing, VerifiedAccessToken, VerifiedTokenCache, verify_access_token
from bastion.tokens.signing_keys import MANIFEST_NAME


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    keyring: KeyRing
    sealer: Sealer
    hasher: PasswordHasher
    checkpointer: Checkpointer  # signs the audit chain head and sends it to the sinks
    token_cache: VerifiedTokenCache = field(default_factory=VerifiedTokenCache)
    # The key manifest as it was when ``keyring`` was read (see ``_manifest_stamp``).
    _keys_seen: tuple[int, int] | None = None
    _keys_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        data_dir = settings.data_dir
        prepare_data_dir(data_dir)
        db = Database(settings.resolved_database_url)
        db.migrate()
        with db.begin() as conn:
            ensure_default_tenant(conn, now=clock.now())
        # Stamp before reading: a rotation in between only causes one more reload later.
        keys_seen = _manifest_stamp(data_dir / "keys")
        keyring = KeyRing.load_or_create(data_dir / "keys", now=clock.now())
        if settings.master_key is not None:
            key = master_key_from_setting(settings.master_key.get_secret_value())
        else:
            key = load_or_create_master_key(data_dir / "master.key")
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            keyring=keyring,
            sealer=Sealer(key),
            hasher=make_hasher(settings.argon2_profile),
            checkpointer=Checkpointer(
                db, clock=clock, exporter=CheckpointExporter(build_sinks(settings))
            ),
            _keys_seen=keys_seen,
        )

    @cached_property
    def sessions(self) -> SessionIssuer:
        """What issuing tokens needs (the key ring as it is at each use)."""
        settings = self.settings
        return SessionIssuer(
            keys=lambda: self.keyring,
            issuer=settings.resolved_issuer,
            audience=settings.audience,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
        )

    @cached_property
    def authn(self) -> AuthnDeps:
        """What the authentication services (sign-in, step-up, self-service) use."""
        return AuthnDeps(
            db=self.db,
            clock=self.clock,
            hasher=self.hasher,
            sealer=self.sealer,
            sessions=self.sessions,
            transaction_ttl=self.settings.login_transaction_ttl,
            max_attempts=self.settings.login_max_attempts,
            relying_party=self.relying_party,
            attestation=attestation_policy_from_settings(self.settings),
            risk=self.risk_engine,
        )

    @cached_property
    def risk_engine(self) -> RiskEngine:
        """The risk engine: the GeoIP database and the anonymiser list of the settings
        (``ConfigurationError`` when either is unreadable), opened once."""
        return RiskEngine.open(
            geoip_database=self.settings.risk_geoip_database,
            anonymiser_networks=self.settings.risk_anonymiser_networks,
        )

    @cached_property
    def relying_party(self) -> RelyingParty | None:
        """WebAuthn's relying party; None when the public URL is an IP address."""
        try:
            return relying_party_from_settings(self.settings)
        except ConfigurationError:
            return None

    def verify_access_token(self, token: str) -> VerifiedAccessToken:
        """Verify a presented access token against this installation's keys and settings.

        A token naming a key this process has not loaded may have been signed by another
        worker process that just rotated the keys: the key directory is re-read, only if
        its manifest changed since it was last read, and the token verified once more.
        So an unknown ``kid`` costs a ``stat`` of the manifest, and the keys are loaded at
        most once per change of the manifest, whatever ``kid`` a caller invents.
        """
        ring = self.keyring
        try:
            return self._verify(token, ring)
        except UnknownSigningKey:
            self.reload_keys_if_rotated()
            if self.keyring is ring:  # nothing new, here or by a concurrent reload
                raise
            return self._verify(token, self.keyring)

    def _verify(self, token: str, keyring: KeyRing) -> VerifiedAccessToken:
        return verify_access_token(
            token=token,
            keyring=keyring,
            issuer=self.settings.resolved_issuer,
            audience=self.settings.audience,
            now=self.clock.now(),
            leeway=self.settings.clock_skew,
        )

    def reload_keys_if_rotated(self) -> bool:
        """Re-read the keys when their manifest changed since they were read: a key added by
        ``bastion keys rotate`` or by another worker process. True when the ring changed."""
        with self._keys_lock:  # one reader at a time; the others then see it done
            stamp = _manifest_stamp(self.data_dir / "keys")
            if stamp is None or stamp == self._keys_seen:
                return False
            self.keyring = KeyRing.load_or_create(self.data_dir / "keys", now=self.clock.now())
            self._keys_seen = stamp
            return True

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        self.db.dispose()


def _manifest_stamp(key_dir: Path) -> tuple[int, int] | None:
    """Identity of the key manifest as (inode, mtime in ns), or None when there is none yet.

    The manifest is only ever replaced by a rename, so every rotation gives it a new inode:
    a change is seen even when the file system's mtime is too coarse to tell.
    """
    try:
        info = (key_dir / MANIFEST_NAME).stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns
