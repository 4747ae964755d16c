"""Risk-engine tests: real addresses per country, a real SQLite store, an explicit clock.

The addresses are public ones the bundled GeoLite2 Country data places in the country
named (checked by tests/unit/test_risk_geo.py); no traffic is ever sent to them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from bastion.risk import (
    DEFAULT_RISK_POLICY,
    BundledGeolocator,
    LoginRisk,
    RiskEngine,
    RiskPolicy,
    assess_login,
    record_login_attempt,
)
from bastion.risk.networks import NetworkSet
from bastion.risk.store import remember_device
from bastion.sealing import Sealer
from bastion.storage import Database, new_id
from bastion.storage.schema import tenants, users

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Paris
PARIS = "90.84.12.34"  # FR
PARIS_OFFICE = "90.84.12.0/24"
PARIS_HOME = "80.12.0.1"  # FR, another network
LYON_V6 = "2a01:e0a::1"  # FR, IPv6
SYDNEY = "1.128.0.1"  # AU
BERLIN = "85.214.0.1"  # DE
LONDON = "81.2.69.142"  # GB
NEW_YORK = "8.8.8.8"  # US
TOKYO = "133.0.0.1"  # JP
SAO_PAULO = "200.160.0.1"  # BR
LAN = "10.1.2.3"
SEALER = Sealer(bytes(range(32)))
ENGINE = RiskEngine(BundledGeolocator())


def office_policy(**document: object) -> RiskPolicy:
    """The default policy with the Paris office as a trusted network, plus ``document``."""
    base: dict[str, object] = {"networks": {"trusted": [PARIS_OFFICE]}}
    base.update(document)
    return RiskPolicy.from_document(base)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'bastion.db'}")
    database.migrate()
    yield database
    database.dispose()


def make_user(db: Database, username: str = "alice") -> str:
    """A real users row (risk_devices has a foreign key to it)."""
    user_id = new_id("usr")
    with db.begin() as conn:
        tenant_id = conn.execute(select(tenants.c.id).where(tenants.c.name == "risk")).scalar()
        if tenant_id is None:
            tenant_id = new_id("tnt")
            conn.execute(insert(tenants), {"id": tenant_id, "name": "risk", "created_at": T0})
        conn.execute(
            insert(users),
            {
                "id": user_id,
                "tenant_id": tenant_id,
                "username": username,
                "status": "active",
                "created_at": T0,
                "updated_at": T0,
            },
        )
    return user_id


@dataclass
class Harness:
    """Drives the engine the way a sign-in does: assess in a read, record in a write."""

    db: Database
    policy: RiskPolicy = DEFAULT_RISK_POLICY
    engine: RiskEngine = ENGINE
    minimum_acr: str = "aal2"
    devices: dict[str, str] = field(default_factory=dict)  # user id → credential

    def assess(
        self,
        *,
        username: str,
        user_id: str | None,
        ip: str | None,
        at: datetime,
        roles: Sequence[str] = ("viewer",),
        device: str | None = None,
    ) -> LoginRisk:
        with self.db.read() as conn:
            return assess_login(
                conn,
                self.engine,
                policy=self.policy,
                sealer=SEALER,
                username=username,
                user_id=user_id,
                roles=roles,
                ip=ip,
                device_credential=device,
                minimum_acr=self.minimum_acr,
                now=at,
            )

    def attempt(
        self,
        *,
        username: str,
        user_id: str | None,
        ip: str | None,
        at: datetime,
        outcome: str,
        roles: Sequence[str] = ("viewer",),
        device: str | None = None,
    ) -> LoginRisk:
        risk = self.assess(
            username=username, user_id=user_id, ip=ip, at=at, roles=roles, device=device
        )
        with self.db.begin() as conn:
            record_login_attempt(conn, risk, outcome=outcome, tenant_id="tnt_test", now=at)
        return risk

    def remember(self, user_id: str, *, at: datetime, ip: str | None = PARIS) -> str:
        with self.db.begin() as conn:
            _, credential = remember_device(
                conn, user_id=user_id, name="laptop", ip=ip, now=at, policy=self.policy
            )
        self.devices[user_id] = credential
        return credential

    def settle(
        self,
        user_id: str,
        *,
        username: str = "alice",
        ip: str = PARIS,
        days: int = 20,
        hour: int = 9,
        until: datetime = T0,
    ) -> None:
        """A user who signed in every weekday morning at ``hour`` UTC for ``days`` days."""
        device = self.devices.get(user_id)
        for back in range(days, 0, -1):
            at = (until - timedelta(days=back)).replace(hour=hour, minute=5)
            self.attempt(
                username=username, user_id=user_id, ip=ip, at=at, outcome="success", device=device
            )


def no_anonymisers() -> NetworkSet:
    return NetworkSet()
