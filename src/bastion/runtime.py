"""Everything a running Bastion holds, opened once: settings, clock, database, keys.

The HTTP app and the CLI both build a ``Runtime``; the CLI does so on a stopped
server too, against the same data directory.
"""

from __future__ import annotations

import threading
import time
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
from bastion.identity import key_table
from bastion.identity.tenants import ensure_default_tenant
from bastion.risk import RiskEngine
from bastion.sealing import (
    Sealer,
    load_or_create_master_key,
    master_key_from_file,
    master_key_from_setting,
)
from bastion.storage import Database
from bastion.tokens import (
    KeyRing,
    VerifiedAccessToken,
    VerifiedTokenCache,
    rotate_keys,
    verify_access_token,
)
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
    # The keys as they were when ``keyring`` was read: the manifest's ``_manifest_stamp``
    # (SQLite), ``key_table.stamp`` (PostgreSQL).
    _keys_seen: tuple[int, int] | None = None
    _keys_checked: float = float("-inf")  # time.monotonic() of the last look
    _keys_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        data_dir = settings.data_dir
        prepare_data_dir(data_dir)
        sealer = Sealer(master_key_of(settings))
        db = Database(settings.resolved_database_url)
        # Several replicas may start together on one empty database: one migrates and
        # creates, the others wait and find it done.
        with db.startup_lock():
            db.migrate()
            with db.begin() as conn:
                ensure_default_tenant(conn, now=clock.now())
            if db.is_sqlite:  # the keys are files in the data folder
                # Stamp before reading: a rotation in between only causes one more reload.
                keys_seen = _manifest_stamp(data_dir / "keys")
                keyring = KeyRing.load_or_create(data_dir / "keys", now=clock.now())
            else:  # PostgreSQL: in the database, sealed, the same for every replica
                with db.begin() as conn:
                    keys_seen = key_table.stamp(conn)
                    keyring = key_table.load_or_create(conn, sealer, now=clock.now())
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            keyring=keyring,
            sealer=sealer,
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
        worker process or replica that just rotated the keys: the keys are re-read, only
        if they changed since they were last read, and the token verified once more. So an
        unknown ``kid`` costs a ``stat`` of the manifest (SQLite) or, at most ten times a
        second, one small query (PostgreSQL), and the keys are loaded at most once per
        rotation, whatever ``kid`` a caller invents.
        """
        ring = self.keyring
        try:
            return self._verify(token, ring)
        except UnknownSigningKey:
            # A look costs a database query on PostgreSQL: at most ten a second for
            # whatever kid a caller invents (the housekeeping looks every second anyway).
            self.reload_keys_if_rotated(
                at_most_every=0.0 if self.db.is_sqlite else KEY_LOOK_SECONDS
            )
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

    def reload_keys_if_rotated(self, *, at_most_every: float = 0.0) -> bool:
        """Re-read the keys when they changed since they were read: a key added by
        ``bastion keys rotate``, another worker process or (PostgreSQL) another replica.
        True when the ring changed. ``at_most_every``: skip the look (a database query on
        PostgreSQL) when the last one is more recent than that many seconds."""
        with self._keys_lock:  # one reader at a time; the others then see it done
            moment = time.monotonic()
            if moment - self._keys_checked < at_most_every:
                return False
            self._keys_checked = moment
            if self.db.is_sqlite:
                stamp = _manifest_stamp(self.data_dir / "keys")
                if stamp is None or stamp == self._keys_seen:
                    return False
                self.keyring = KeyRing.load_or_create(self.data_dir / "keys", now=self.clock.now())
                self._keys_seen = stamp
                return True
            with self.db.read() as conn:
                stamp = key_table.stamp(conn)
                if stamp == self._keys_seen:
                    return False
                ring = key_table.read_ring(conn, self.sealer)
            if ring is None:
                return False
            self.keyring, self._keys_seen = ring, stamp
            return True

    def rotate_keys(self) -> str:
        """Add a new active signing key (the previous one retires); its kid."""
        if self.db.is_sqlite:
            kid = rotate_keys(self.data_dir / "keys", now=self.clock.now())
        else:
            with self.db.begin() as conn:
                kid = key_table.rotate(conn, self.sealer, now=self.clock.now())
        self.reload_keys_if_rotated()
        return kid

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        self.db.dispose()


KEY_LOOK_SECONDS = 0.1


def master_key_of(settings: Settings) -> bytes:
    """``BASTION_MASTER_KEY``, else ``BASTION_MASTER_KEY_FILE``, else the data folder's
    ``master.key`` (made on first start)."""
    if settings.master_key is not None:
        return master_key_from_setting(settings.master_key.get_secret_value())
    if settings.master_key_file is not None:
        return master_key_from_file(settings.master_key_file)
    return load_or_create_master_key(settings.data_dir / "master.key")


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
