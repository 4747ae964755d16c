"""Impossible travel: haversine distance, uncertainty radii, tolerance, implied speed."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from tests.support.risk import T0

from bastion.risk.geo import LOCAL, Location, country_location
from bastion.risk.travel import haversine_km, implied_travel

PARIS_CITY = Location("FR", 48.8566, 2.3522, 0.0)
SYDNEY_CITY = Location("AU", -33.8688, 151.2093, 0.0)
LYON_CITY = Location("FR", 45.7640, 4.8357, 0.0)


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((48.8566, 2.3522), (-33.8688, 151.2093), 16_960),  # Paris - Sydney
        ((48.8566, 2.3522), (51.5074, -0.1278), 344),  # Paris - London
        ((40.7128, -74.0060), (35.6762, 139.6503), 10_850),  # New York - Tokyo
        ((0.0, 0.0), (0.0, 180.0), 20_015),  # half the equator
        ((10.0, 10.0), (10.0, 10.0), 0),
    ],
)
def test_haversine_distance(a: tuple[float, float], b: tuple[float, float], km: int) -> None:
    assert haversine_km(*a, *b) == pytest.approx(km, rel=0.005, abs=1)


def test_paris_then_sydney_one_hour_later_is_far_above_airliner_speed() -> None:
    travel = implied_travel(
        origin=PARIS_CITY,
        origin_at=T0,
        destination=SYDNEY_CITY,
        destination_at=T0 + timedelta(hours=1),
        tolerance_km=100,
    )
    assert travel is not None
    assert travel.speed_kmh == pytest.approx(16_860, rel=0.01)


def test_the_radii_and_the_tolerance_come_off_the_distance() -> None:
    travel = implied_travel(
        origin=Location("FR", 48.8566, 2.3522, 50.0),
        origin_at=T0,
        destination=Location("FR", 45.7640, 4.8357, 70.0),
        destination_at=T0 + timedelta(hours=1),
        tolerance_km=100,
    )
    assert travel is not None
    assert travel.distance_km == pytest.approx(392, abs=2)
    assert travel.effective_km == pytest.approx(392 - 50 - 70 - 100, abs=2)


def test_overlapping_circles_imply_no_travel_even_at_once() -> None:
    travel = implied_travel(
        origin=PARIS_CITY,
        origin_at=T0,
        destination=LYON_CITY,
        destination_at=T0,
        tolerance_km=400,
    )
    assert travel is not None
    assert (travel.effective_km, travel.speed_kmh) == (0.0, 0.0)


def test_any_distance_at_the_same_instant_is_infinitely_fast() -> None:
    travel = implied_travel(
        origin=PARIS_CITY, origin_at=T0, destination=SYDNEY_CITY, destination_at=T0, tolerance_km=0
    )
    assert travel is not None
    assert math.isinf(travel.speed_kmh)


def test_neighbouring_countries_by_their_points_are_not_impossible_travel() -> None:
    """Strasbourg and Kehl are 5 km apart; by country points France - Germany is ~800 km,
    which the two countries' radii absorb: ten minutes apart is fine."""
    travel = implied_travel(
        origin=country_location("FR"),
        origin_at=T0,
        destination=country_location("DE"),
        destination_at=T0 + timedelta(minutes=10),
        tolerance_km=100,
    )
    assert travel is not None
    assert travel.distance_km > 600
    assert travel.speed_kmh == 0.0


def test_a_location_without_a_point_gives_no_travel() -> None:
    assert (
        implied_travel(
            origin=LOCAL,
            origin_at=T0,
            destination=SYDNEY_CITY,
            destination_at=T0,
            tolerance_km=100,
        )
        is None
    )
    assert (
        implied_travel(
            origin=PARIS_CITY,
            origin_at=T0,
            destination=country_location("AQ"),
            destination_at=T0,
            tolerance_km=100,
        )
        is None
    )
