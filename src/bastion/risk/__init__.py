"""Adaptive, risk-based authentication: signals, scoring, decisions with reasons.

Pure signals (``signals``) score an attempt against its stored history (``store``);
``decision`` turns the reasons into an outcome and a login's requirement; ``continuous``
and ``volume`` re-evaluate sessions on every request in O(1). docs/risk.md explains the
weights, thresholds and how to tune them.
"""

from bastion.risk.continuous import Challenge, SessionWatch
from bastion.risk.decision import (
    LoginRequirement,
    RiskDecision,
    allowed_methods,
    decide,
    login_requirement,
)
from bastion.risk.devices import DeviceRecord, DeviceState, device_state
from bastion.risk.engine import RiskEngine
from bastion.risk.geo import BundledGeolocator, Geolocator, Location, MmdbGeolocator
from bastion.risk.policy import DEFAULT_RISK_POLICY, RiskPolicy, Thresholds, load_risk_policy
from bastion.risk.reasons import REASONS, Contribution, Level, Outcome, ReasonSpec
from bastion.risk.service import (
    LoginRisk,
    assess_login,
    record_login_attempt,
    record_login_outcome,
)
from bastion.risk.signals import LoginAttempt, LoginHistory, PastLogin
from bastion.risk.volume import Burst, VolumeMeter

__all__ = [
    "DEFAULT_RISK_POLICY",
    "REASONS",
    "BundledGeolocator",
    "Burst",
    "Challenge",
    "Contribution",
    "DeviceRecord",
    "DeviceState",
    "Geolocator",
    "Level",
    "Location",
    "LoginAttempt",
    "LoginHistory",
    "LoginRequirement",
    "LoginRisk",
    "MmdbGeolocator",
    "Outcome",
    "PastLogin",
    "ReasonSpec",
    "RiskDecision",
    "RiskEngine",
    "RiskPolicy",
    "SessionWatch",
    "Thresholds",
    "VolumeMeter",
    "allowed_methods",
    "assess_login",
    "decide",
    "device_state",
    "load_risk_policy",
    "login_requirement",
    "record_login_attempt",
    "record_login_outcome",
]
