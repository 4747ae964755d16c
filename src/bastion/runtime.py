"""Everything a running Bastion holds, opened once: settings, clock, database, keys.

The HTTP app and the CLI both build a ``Runtime``; the CLI does so on a stopped
server too, against the same data directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from bastion.clock import Clock, SystemClock
from bastion.config import Settings
from bastion.factors.password import make_hasher
from bastion.identity.tenants import ensure_default_tenant
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
    token_cache: VerifiedTokenCache = field(default_factory=VerifiedTokenCache)
    _keys_seen: float = 0.0

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        db = Database(settings.resolved_database_url)
        db.migrate()
        with db.begin() as conn:
            ensure_default_tenant(conn, now=clock.now())
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
        )

    def verify_access_token(self, token: str) -> VerifiedAccessToken:
        """Verify a presented access token against this installation's keys and settings."""
        return verify_access_token(
            token=token,
            keyring=self.keyring,
            issuer=self.settings.resolved_issuer,
            audience=self.settings.audience,
            now=self.clock.now(),
            leeway=self.settings.clock_skew,
        )

    def reload_keys_if_rotated(self) -> bool:
        """Pick up a key added by ``bastion keys rotate`` while the server runs."""
        manifest = self.data_dir / "keys" / MANIFEST_NAME
        try:
            changed = manifest.stat().st_mtime
        except FileNotFoundError:
            return False
        if self._keys_seen == 0.0:
            self._keys_seen = changed
            return False
        if changed == self._keys_seen:
            return False
        self._keys_seen = changed
        self.keyring = KeyRing.load_or_create(self.data_dir / "keys", now=self.clock.now())
        return True

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        self.db.dispose()
