"""Impossible travel: the speed implied by two located uses of one account or session.

Distance is the haversine great-circle distance between the two points, less both
locations' uncertainty radii and the policy's tolerance (never below zero): two uses
whose circles overlap imply no travel at all. The implied speed is that distance over the
time between them; two uses at the same instant that are any distance apart are
infinitely fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from bastion.risk.geo import Location

__all__ = ["EARTH_RADIUS_KM", "Travel", "haversine_km", "implied_travel"]

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Travel:
    distance_km: float  # between the points
    effective_km: float  # less both radii and the tolerance, at least 0
    hours: float
    speed_kmh: float  # math.inf when effective_km > 0 and hours == 0


def implied_travel(
    *,
    origin: Location,
    origin_at: datetime,
    destination: Location,
    destination_at: datetime,
    tolerance_km: float,
) -> Travel | None:
    """The travel between two located moments, or None when either has no point."""
    if (
        origin.latitude is None
        or origin.longitude is None
        or destination.latitude is None
        or destination.longitude is None
    ):
        return None
    distance = haversine_km(
        origin.latitude, origin.longitude, destination.latitude, destination.longitude
    )
    effective = max(0.0, distance - origin.radius_km - destination.radius_km - tolerance_km)
    hours = abs((destination_at - origin_at).total_seconds()) / 3600
    if effective == 0.0:
        speed = 0.0
    elif hours == 0.0:
        speed = math.inf
    else:
        speed = effective / hours
    return Travel(distance, effective, hours, speed)
