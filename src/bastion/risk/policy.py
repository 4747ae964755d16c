"""The risk policy: weights, floors, thresholds and lists, validated strictly.

It is the ``risk`` section of a tenant's policy document (``GET|PUT /admin/policy``).
``RiskPolicy.from_document`` refuses unknown keys, wrong types and out-of-range values
with a ``ValidationError`` naming the key (``risk.travel.max_speed_kmh …``); missing keys
take the documented defaults (docs/risk.md, generated from ``DEFAULT_RISK_POLICY``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Any

from bastion.errors import ValidationError
from bastion.risk.geo import COUNTRY_POINTS
from bastion.risk.hours import DAYS, HoursWindow, parse_clock, zone
from bastion.risk.networks import NetworkSet, parse_networks
from bastion.risk.reasons import REASONS, Outcome

__all__ = [
    "DEFAULT_RISK_POLICY",
    "VOLUME_KINDS",
    "RiskPolicy",
    "Thresholds",
    "load_risk_policy",
    "non_default",
]

VOLUME_KINDS: tuple[str, ...] = ("query", "scroll", "export")
MAX_LIST = 1000
MAX_WEIGHT = 1000
# A role name as authz.roles.ROLE_NAME defines it, or "*" (every user of the tenant).
_ROLE = re.compile(r"^(\*|[a-z][a-z0-9_.-]{0,63})$")

_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "": (
            "thresholds", "reasons", "networks", "countries", "travel", "hours",
            "velocity", "devices", "volume",
        ),
        "thresholds": ("second_factor", "phishing_resistant", "deny"),
        "networks": ("trusted", "blocked"),
        "countries": ("allowed", "blocked"),
        "travel": ("max_speed_kmh", "tolerance_km", "lookback_hours"),
        "hours": ("time_zone", "roles", "usual_min_history", "usual_margin_hours"),
        "velocity": (
            "window_seconds", "user_failures", "spraying_usernames",
            "reputation_half_life_hours", "reputation_failures",
        ),
        "devices": ("ttl_days",),
        "volume": ("burst_multiplier", "baseline_days", "baseline_min_hours", "floors"),
    }
)  # fmt: skip


@dataclass(frozen=True)
class Thresholds:
    """Scores at which an attempt needs more: strictly increasing."""

    second_factor: int = 30
    phishing_resistant: int = 60
    deny: int = 90

    def outcome(self, score: int) -> Outcome:
        if score >= self.deny:
            return Outcome.DENY
        if score >= self.phishing_resistant:
            return Outcome.PHISHING_RESISTANT
        if score >= self.second_factor:
            return Outcome.SECOND_FACTOR
        return Outcome.ALLOW


def _default_reasons() -> Mapping[str, tuple[int, Outcome]]:
    return MappingProxyType({code: (spec.weight, spec.floor) for code, spec in REASONS.items()})


def _default_floors() -> Mapping[str, int]:
    return MappingProxyType({"query": 1000, "scroll": 1000, "export": 1000})


@dataclass(frozen=True)
class RiskPolicy:
    """One tenant's validated risk policy (immutable). Field comments are the docs."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    reasons: Mapping[str, tuple[int, Outcome]] = field(default_factory=_default_reasons)
    trusted_networks: tuple[str, ...] = ()  # CIDR; negative weight
    blocked_networks: tuple[str, ...] = ()  # CIDR; denied
    allowed_countries: frozenset[str] = frozenset()  # empty: every country
    blocked_countries: frozenset[str] = frozenset()
    max_speed_kmh: float = 1000.0  # faster than an airliner
    tolerance_km: float = 100.0  # added to the locations' own radii
    lookback_hours: int = 24  # successful sign-ins this recent are travel origins
    time_zone: str = "UTC"  # for role windows without their own, and usual hours
    role_hours: Mapping[str, HoursWindow] = field(default_factory=lambda: MappingProxyType({}))
    usual_min_history: int = 10  # successful sign-ins before usual hours count
    usual_margin_hours: int = 1
    window_seconds: int = 3600  # velocity window
    user_failures: int = 5  # failures of one user in the window
    spraying_usernames: int = 10  # distinct usernames failing from one network
    reputation_half_life_hours: float = 6.0
    reputation_failures: float = 20.0  # decayed failures of one network
    device_ttl_days: int = 30
    burst_multiplier: float = 10.0  # a minute above multiplier x baseline is a burst
    baseline_days: int = 14
    baseline_min_hours: int = 3  # active hours before a baseline is trusted
    volume_floors: Mapping[str, int] = field(default_factory=_default_floors)  # points/min

    @cached_property
    def trusted(self) -> NetworkSet:
        return NetworkSet.of(self.trusted_networks)

    @cached_property
    def blocked(self) -> NetworkSet:
        return NetworkSet.of(self.blocked_networks)

    def reason(self, code: str) -> tuple[int, Outcome]:
        """(weight, floor) of a registered reason code."""
        return self.reasons[code]

    # -- the JSON document -------------------------------------------------------

    @classmethod
    def from_document(cls, document: object) -> RiskPolicy:
        root = _Section.of(document, "risk", _KEYS[""])
        thresholds = root.section("thresholds", _KEYS["thresholds"])
        networks = root.section("networks", _KEYS["networks"])
        countries = root.section("countries", _KEYS["countries"])
        travel = root.section("travel", _KEYS["travel"])
        hours = root.section("hours", _KEYS["hours"])
        velocity = root.section("velocity", _KEYS["velocity"])
        volume = root.section("volume", _KEYS["volume"])
        d = cls()
        time_zone = _zone(hours.values.get("time_zone", d.time_zone), f"{hours.path}.time_zone")
        return cls(
            thresholds=_thresholds(thresholds),
            reasons=_reasons(root.section("reasons", None)),
            trusted_networks=_networks(networks, "trusted"),
            blocked_networks=_networks(networks, "blocked"),
            allowed_countries=_countries(countries, "allowed"),
            blocked_countries=_countries(countries, "blocked"),
            max_speed_kmh=travel.number("max_speed_kmh", d.max_speed_kmh, 1, 100_000),
            tolerance_km=travel.number("tolerance_km", d.tolerance_km, 0, 20_000),
            lookback_hours=travel.integer("lookback_hours", d.lookback_hours, 1, 24 * 90),
            time_zone=time_zone,
            role_hours=_role_hours(hours.section("roles", None), time_zone),
            usual_min_history=hours.integer("usual_min_history", d.usual_min_history, 1, 1000),
            usual_margin_hours=hours.integer("usual_margin_hours", d.usual_margin_hours, 0, 12),
            window_seconds=velocity.integer("window_seconds", d.window_seconds, 60, 86_400),
            user_failures=velocity.integer("user_failures", d.user_failures, 1, 10_000),
            spraying_usernames=velocity.integer(
                "spraying_usernames", d.spraying_usernames, 2, 10_000
            ),
            reputation_half_life_hours=velocity.number(
                "reputation_half_life_hours", d.reputation_half_life_hours, 0.1, 24 * 30
            ),
            reputation_failures=velocity.number(
                "reputation_failures", d.reputation_failures, 1, 1_000_000
            ),
            device_ttl_days=root.section("devices", _KEYS["devices"]).integer(
                "ttl_days", d.device_ttl_days, 1, 365
            ),
            burst_multiplier=volume.number("burst_multiplier", d.burst_multiplier, 1.5, 10_000),
            baseline_days=volume.integer("baseline_days", d.baseline_days, 1, 90),
            baseline_min_hours=volume.integer("baseline_min_hours", d.baseline_min_hours, 1, 500),
            volume_floors=_floors(volume.section("floors", VOLUME_KINDS)),
        )

    def to_document(self) -> dict[str, Any]:
        """Every key with its value, as ``GET /admin/policy`` shows the ``risk`` section."""
        return {
            "thresholds": {
                "second_factor": self.thresholds.second_factor,
                "phishing_resistant": self.thresholds.phishing_resistant,
                "deny": self.thresholds.deny,
            },
            "reasons": {
                code: {"weight": weight, "floor": floor.label}
                for code, (weight, floor) in sorted(self.reasons.items())
            },
            "networks": {
                "trusted": list(self.trusted_networks),
                "blocked": list(self.blocked_networks),
            },
            "countries": {
                "allowed": sorted(self.allowed_countries),
                "blocked": sorted(self.blocked_countries),
            },
            "travel": {
                "max_speed_kmh": self.max_speed_kmh,
                "tolerance_km": self.tolerance_km,
                "lookback_hours": self.lookback_hours,
            },
            "hours": {
                "time_zone": self.time_zone,
                "roles": {
                    role: window.as_document() for role, window in sorted(self.role_hours.items())
                },
                "usual_min_history": self.usual_min_history,
                "usual_margin_hours": self.usual_margin_hours,
            },
            "velocity": {
                "window_seconds": self.window_seconds,
                "user_failures": self.user_failures,
                "spraying_usernames": self.spraying_usernames,
                "reputation_half_life_hours": self.reputation_half_life_hours,
                "reputation_failures": self.reputation_failures,
            },
            "devices": {"ttl_days": self.device_ttl_days},
            "volume": {
                "burst_multiplier": self.burst_multiplier,
                "baseline_days": self.baseline_days,
                "baseline_min_hours": self.baseline_min_hours,
                "floors": dict(sorted(self.volume_floors.items())),
            },
        }


DEFAULT_RISK_POLICY = RiskPolicy()


def non_default(policy: RiskPolicy) -> dict[str, Any]:
    """Only what ``policy`` sets apart from the defaults (what a tenant's policy stores, so
    that its audit trail names the settings an admin changed, not every default)."""
    return _delta(policy.to_document(), DEFAULT_RISK_POLICY.to_document())


def _delta(document: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in document.items():
        default = defaults.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping) and key != "roles":
            inner = _delta(value, default)
            if inner:
                found[key] = inner
        elif value != default:
            found[key] = value
    return found


def load_risk_policy(document: object) -> RiskPolicy:
    """``RiskPolicy.from_document``, remembered per document: an unchanged document gives
    the very same object, so callers that re-read the policy often (the guard, every
    0.5 s) neither validate it again nor make ``SessionWatch`` re-evaluate its sessions
    (it compares policies by identity). Invalid documents are not remembered."""
    try:
        text = json.dumps(document, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return RiskPolicy.from_document(document)  # raises the ValidationError it deserves
    return _load(text)


@lru_cache(maxsize=256)
def _load(text: str) -> RiskPolicy:
    return RiskPolicy.from_document(json.loads(text))


# -- validators: each names the key it refuses ------------------------------------------


@dataclass(frozen=True)
class _Section:
    """A JSON object of the document and its path (``risk.travel``), for messages."""

    path: str
    values: Mapping[str, Any]

    @classmethod
    def of(cls, value: object, path: str, known: tuple[str, ...] | None) -> _Section:
        if not isinstance(value, Mapping):
            raise ValidationError(f"{path} must be an object.")
        if known is not None:
            unknown = sorted(str(key) for key in value if key not in known)
            if unknown:
                raise ValidationError(
                    f"Unknown keys in {path}: {', '.join(unknown)}. Known keys: {', '.join(known)}."
                )
        return cls(path, value)

    def section(self, key: str, known: tuple[str, ...] | None) -> _Section:
        return _Section.of(self.values.get(key, {}), f"{self.path}.{key}", known)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(f"{self.path}.{key} must be a whole number from {low} to {high}.")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.values.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ValidationError(f"{self.path}.{key} must be a number from {low:g} to {high:g}.")
        return float(value)

    def strings(self, key: str) -> list[str]:
        value = self.values.get(key, [])
        if (
            isinstance(value, str)
            or not isinstance(value, list | tuple)
            or len(value) > MAX_LIST
            or not all(isinstance(item, str) for item in value)
        ):
            raise ValidationError(
                f"{self.path}.{key} must be a list of at most {MAX_LIST} strings."
            )
        return list(value)


def _thresholds(section: _Section) -> Thresholds:
    d = Thresholds()
    values = [
        section.integer(name, getattr(d, name), -MAX_WEIGHT, MAX_WEIGHT)
        for name in ("second_factor", "phishing_resistant", "deny")
    ]
    if not values[0] < values[1] < values[2]:
        raise ValidationError(
            "risk.thresholds must increase: second_factor < phishing_resistant < deny."
        )
    return Thresholds(*values)


def _reasons(section: _Section) -> Mapping[str, tuple[int, Outcome]]:
    unknown = sorted(str(code) for code in section.values if code not in REASONS)
    if unknown:
        raise ValidationError(f"Unknown reason codes in risk.reasons: {', '.join(unknown)}.")
    table = dict(_default_reasons())
    for code in section.values:
        entry = section.section(code, ("weight", "floor"))
        weight, floor = table[code]
        weight = entry.integer("weight", weight, -MAX_WEIGHT, MAX_WEIGHT)
        if "floor" in entry.values:
            try:
                floor = Outcome.from_label(entry.values["floor"])
            except (KeyError, TypeError):
                labels = ", ".join(o.label for o in Outcome)
                raise ValidationError(f"{entry.path}.floor must be one of {labels}.") from None
        table[code] = (weight, floor)
    return MappingProxyType(table)


def _networks(section: _Section, key: str) -> tuple[str, ...]:
    try:
        return parse_networks(section.strings(key), where=f"{section.path}.{key}")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _countries(section: _Section, key: str) -> frozenset[str]:
    values = section.strings(key)
    unknown = sorted(code[:8] for code in values if code not in COUNTRY_POINTS)
    if unknown:
        raise ValidationError(
            f"{section.path}.{key}: not ISO 3166-1 alpha-2 country codes: {', '.join(unknown)}."
        )
    return frozenset(values)


def _zone(value: object, where: str) -> str:
    message = f"{where} must be an IANA time zone name such as Europe/Paris."
    if not isinstance(value, str):
        raise ValidationError(message)
    try:
        zone(value)
    except ValueError:
        raise ValidationError(message) from None
    return value


def _role_hours(section: _Section, default_zone: str) -> Mapping[str, HoursWindow]:
    windows = {}
    for role in section.values:
        if not isinstance(role, str) or not _ROLE.match(role):
            raise ValidationError(
                f"{section.path}: role names are lower-case letters, digits, '_', '.', '-' "
                "(up to 64, as in authz.roles), or '*' for every user."
            )
        entry = section.section(role, ("days", "from", "to", "time_zone"))
        days = entry.strings("days") if "days" in entry.values else list(DAYS)
        if not days or any(day not in DAYS for day in days):
            raise ValidationError(f"{entry.path}.days must list days among {', '.join(DAYS)}.")
        try:
            start = parse_clock(entry.values.get("from", ""))
            end = parse_clock(entry.values.get("to", ""))
        except ValueError:
            raise ValidationError(
                f"{entry.path}.from and .to must be times HH:MM (24:00 allowed)."
            ) from None
        if start == end:
            raise ValidationError(f"{entry.path}: from and to are equal (an empty window).")
        time_zone = _zone(entry.values.get("time_zone", default_zone), f"{entry.path}.time_zone")
        windows[role] = HoursWindow(
            frozenset(DAYS.index(day) for day in days), start, end, time_zone
        )
    return MappingProxyType(windows)


def _floors(section: _Section) -> Mapping[str, int]:
    defaults = _default_floors()
    return MappingProxyType(
        {kind: section.integer(kind, defaults[kind], 1, 10**9) for kind in VOLUME_KINDS}
    )
