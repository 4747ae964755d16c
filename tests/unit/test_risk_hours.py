"""Time of access: role windows in IANA time zones (overnight, DST) and usual hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.risk.hours import HoursWindow, is_usual_hour, local_hour, parse_clock, zone

WEEKDAYS = frozenset(range(5))
OFFICE = HoursWindow(WEEKDAYS, parse_clock("07:00"), parse_clock("20:00"), "Europe/Paris")
NIGHT_SHIFT = HoursWindow(frozenset({0}), parse_clock("22:00"), parse_clock("06:00"), "UTC")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2026-12-01T06:00", True),  # Tuesday 07:00 in Paris (UTC+1): the first minute
        ("2026-12-01T05:59", False),  # 06:59 in Paris
        ("2026-12-01T18:59", True),  # 19:59 in Paris
        ("2026-12-01T19:00", False),  # 20:00 in Paris: the end is exclusive
        ("2026-12-01T02:00", False),  # 03:00 in Paris
        ("2026-12-05T10:00", False),  # Saturday
        ("2026-07-01T05:00", True),  # summer: 07:00 in Paris is 05:00 UTC (DST)
        ("2026-07-01T04:59", False),
    ],
)
def test_office_hours_in_paris(moment: str, inside: bool) -> None:
    assert OFFICE.contains(utc(moment)) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2026-11-30T23:00", True),  # Monday night
        ("2026-12-01T02:00", True),  # Tuesday early: the night that began on Monday
        ("2026-12-01T06:00", False),
        ("2026-12-01T23:00", False),  # Tuesday night: Tuesday is not in the window's days
        ("2026-11-30T21:59", False),
    ],
)
def test_a_window_over_midnight_belongs_to_the_day_it_began(moment: str, inside: bool) -> None:
    assert NIGHT_SHIFT.contains(utc(moment)) is inside


def test_24_00_is_the_end_of_the_day() -> None:
    whole_day = HoursWindow(frozenset(range(7)), parse_clock("00:00"), parse_clock("24:00"), "UTC")
    assert whole_day.contains(utc("2026-12-01T23:59"))
    assert whole_day.contains(utc("2026-12-01T00:00"))


@pytest.mark.parametrize("text", ["7:00", "25:00", "24:01", "12:60", "noon", "", "12:00:00"])
def test_bad_clock_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock(text)


@pytest.mark.parametrize("name", ["Europe/Paris", "UTC", "America/Argentina/Buenos_Aires"])
def test_iana_zones_resolve(name: str) -> None:
    assert str(zone(name)) == name


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Europe/../UTC", ""]
)
def test_what_is_not_an_iana_zone_name_is_refused_never_read_as_a_path(name: str) -> None:
    with pytest.raises(ValueError, match="IANA"):
        zone(name)


def test_local_hour_follows_the_zone() -> None:
    assert local_hour(utc("2026-12-01T02:00"), "Europe/Paris") == 3
    assert local_hour(utc("2026-12-01T02:00"), "Asia/Tokyo") == 11


@pytest.mark.parametrize(
    ("hour", "usual"),
    [(9, True), (8, True), (10, True), (7, False), (11, False), (23, True), (21, False)],
)
def test_usual_hours_with_a_margin_wrap_around_midnight(hour: int, usual: bool) -> None:
    assert is_usual_hour(hour, {9, 0}, margin=1) is usual


def test_no_history_means_no_usual_hour() -> None:
    assert not is_usual_hour(9, set(), margin=3)
