"""The risk engine: installation-wide inputs (GeoIP, anonymiser list) and ``assess_login``.

One engine per process, built at start-up from the settings (``RiskEngine.open``). A
login's assessment is pure given the engine: the caller locates the address
(``engine.locate``), loads the history (``risk.store.load_login_history``), builds a
``LoginAttempt`` with the clock's ``now``, and gets a ``RiskDecision``. Scoring a
realistic history costs tens of microseconds (make bench, "risk" section).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bastion.risk.decision import RiskDecision, decide
from bastion.risk.geo import LOCAL, BundledGeolocator, Geolocator, Location, open_geolocator
from bastion.risk.networks import NetworkSet, load_network_file, parse_address
from bastion.risk.policy import RiskPolicy
from bastion.risk.signals import LOGIN_SIGNALS, LoginAttempt, LoginFacts, LoginHistory

__all__ = ["RiskEngine"]


@dataclass(frozen=True)
class RiskEngine:
    geolocator: Geolocator
    anonymisers: NetworkSet = field(default_factory=NetworkSet)

    @classmethod
    def open(
        cls, *, geoip_database: Path | None = None, anonymiser_networks: Path | None = None
    ) -> RiskEngine:
        """Open the GeoIP database and read the anonymiser list (ConfigurationError when
        either is unreadable: a server that silently lost them would score blind)."""
        anonymisers = (
            load_network_file(anonymiser_networks) if anonymiser_networks else NetworkSet()
        )
        geolocator = open_geolocator(geoip_database)
        if isinstance(geolocator, BundledGeolocator):
            geolocator.warm()  # ~0.1 s once, at start-up rather than in the first sign-in
        return cls(geolocator, anonymisers)

    def locate(self, ip: str | None) -> Location:
        """Where ``ip`` is. A peer without an IP address (a Unix socket, an in-process test
        client) is local, like a loopback address: it is not a public address the
        database failed to place."""
        if parse_address(ip) is None:
            return LOCAL
        return self.geolocator.locate(ip)

    def assess_login(
        self, attempt: LoginAttempt, history: LoginHistory, policy: RiskPolicy
    ) -> RiskDecision:
        """Score one sign-in attempt; pure given the engine (no I/O, no clock)."""
        facts = LoginFacts(attempt, history, self.anonymisers)
        reasons = [reason for signal in LOGIN_SIGNALS for reason in signal(facts, policy)]
        device = history.device
        recognised = any(reason.code == "device_recognised" for reason in reasons)
        return decide(
            reasons,
            policy.thresholds,
            context="login",
            location=attempt.location,
            device_id=device.id if device is not None and recognised else None,
        )
