"""Time of access: allowed windows per role, and the hours a user usually signs in at.

A window is days of the week plus ``from``-``to`` local times in an IANA time zone
(``zoneinfo``; the ``tzdata`` package supplies the database where the system has none).
A window whose ``to`` is earlier than its ``from`` runs over midnight: ``22:00-06:00`` on
``mon`` covers Monday 23:00 and Tuesday 02:00 (the night belongs to the day it began).
``24:00`` as ``to`` is the end of the day.

Usual hours are learned from the user's successful sign-ins: an hour of the day is usual
when a sign-in happened within ``margin`` hours of it (on the 24-hour circle).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DAYS",
    "HoursWindow",
    "is_usual_hour",
    "local_hour",
    "parse_clock",
    "zone",
]

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+){0,2}$")
END_OF_DAY = 24 * 60


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ``ValueError`` for anything else (never a path)."""
    if not _ZONE_NAME.match(name):
        raise ValueError(f"{name[:64]!r} is not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name[:64]!r} is not an IANA time zone name") from None


def parse_clock(text: str) -> int:
    """Minutes since midnight of ``HH:MM`` (``24:00`` allowed); ``ValueError`` otherwise."""
    if not isinstance(text, str) or not _CLOCK.match(text):
        raise ValueError("times are HH:MM, 00:00 to 24:00")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class HoursWindow:
    days: frozenset[int]  # 0 = Monday
    start: int  # minutes since local midnight
    end: int  # exclusive; < start: runs over midnight
    time_zone: str

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(zone(self.time_zone))
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if self.start <= self.end:
            return day in self.days and self.start <= minute < self.end
        started_today = day in self.days and minute >= self.start
        started_yesterday = (day - 1) % 7 in self.days and minute < self.end
        return started_today or started_yesterday

    def describe(self) -> str:
        days = ",".join(DAYS[d] for d in sorted(self.days))
        return f"{days} {_clock_text(self.start)}-{_clock_text(self.end)} {self.time_zone}"

    def as_document(self) -> dict[str, object]:
        return {
            "days": [DAYS[d] for d in sorted(self.days)],
            "from": _clock_text(self.start),
            "to": _clock_text(self.end),
            "time_zone": self.time_zone,
        }


def local_hour(moment: datetime, time_zone: str) -> int:
    return moment.astimezone(zone(time_zone)).hour


def is_usual_hour(hour: int, seen_hours: Iterable[int], *, margin: int) -> bool:
    """Whether ``hour`` is within ``margin`` hours (circularly) of any hour in ``seen_hours``."""
    for seen in seen_hours:
        apart = abs(hour - seen) % 24
        if min(apart, 24 - apart) <= margin:
            return True
    return False
