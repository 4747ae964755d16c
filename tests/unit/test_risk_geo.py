"""Geolocation: the bundled offline database, country points, MaxMind .mmdb, local addresses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from tests.support.risk import (
    BERLIN,
    LAN,
    LONDON,
    LYON_V6,
    NEW_YORK,
    PARIS,
    PARIS_HOME,
    SAO_PAULO,
    SYDNEY,
    TOKYO,
)

from bastion.errors import ConfigurationError
from bastion.risk.geo import (
    COUNTRY_POINTS,
    LOCAL,
    UNKNOWN,
    BundledGeolocator,
    MmdbGeolocator,
    country_location,
    open_geolocator,
)

BUNDLED = BundledGeolocator()


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        (PARIS, "FR"),
        (PARIS_HOME, "FR"),
        (LYON_V6, "FR"),
        (SYDNEY, "AU"),
        (BERLIN, "DE"),
        (LONDON, "GB"),
        (NEW_YORK, "US"),
        ("2001:4860:4860::8888", "US"),
        (TOKYO, "JP"),
        (SAO_PAULO, "BR"),
        ("::ffff:90.84.12.34", "FR"),  # IPv4-mapped IPv6 is the IPv4 address
    ],
)
def test_bundled_database_places_public_addresses_with_their_country_point(
    ip: str, country: str
) -> None:
    found = BUNDLED.locate(ip)
    point = COUNTRY_POINTS[country]
    assert (found.country, found.latitude, found.longitude) == (
        country,
        point.latitude,
        point.longitude,
    )
    assert found.radius_km == point.radius_km > 0
    assert not found.local


@pytest.mark.parametrize(
    "ip",
    [LAN, "127.0.0.1", "::1", "fe80::1%eth0", "192.168.1.20", "172.16.0.9", "100.64.0.1",
     "169.254.1.1", "fd00::1", "192.0.2.1", "0.0.0.0"],  # noqa: S104
)  # fmt: skip
def test_private_loopback_and_reserved_addresses_are_local_not_errors(ip: str) -> None:
    assert BUNDLED.locate(ip) == LOCAL


@pytest.mark.parametrize("ip", [None, "", "not-an-address", "999.1.1.1", "1.2.3.4/24", "x" * 500])
def test_what_is_not_an_address_is_unknown(ip: str | None) -> None:
    assert BUNDLED.locate(ip) == UNKNOWN


def test_a_public_address_the_database_cannot_place_is_unknown_not_local() -> None:
    found = BUNDLED.locate("2c0f:ffff::1")
    assert found == UNKNOWN
    assert not found.local


def test_country_points_cover_every_country_the_bundled_database_returns() -> None:
    import geoip2fast.geoip2fast as data

    BUNDLED.warm()
    returned = {code for code in data.geoipCountryCodesList if len(code) == 2 and code.isalpha()}
    returned -= {"EU"}  # GeoLite2's continent-only answer: no country, so unknown
    assert returned - set(COUNTRY_POINTS) == set()
    assert country_location("EU") == UNKNOWN


def test_uninhabited_countries_have_a_country_but_no_point() -> None:
    found = country_location("AQ")
    assert found.country == "AQ"
    assert not found.has_point


def test_country_points_are_on_the_map_with_positive_radii() -> None:
    for code, point in COUNTRY_POINTS.items():
        assert len(code) == 2
        assert code.isupper()
        assert point.radius_km > 0
        if point.latitude is not None:
            assert point.longitude is not None
            assert -90 <= point.latitude <= 90
            assert -180 <= point.longitude <= 180


def test_the_bundled_data_loads_and_answers_with_every_socket_refused() -> None:
    """Offline by construction: a fresh process whose audit hook refuses any socket or
    DNS call loads the bundled database and places addresses."""
    script = textwrap.dedent(
        """
        import sys

        def refuse(event, args):
            if event.startswith(("socket.", "urllib.")) or event == "http.client.connect":
                raise RuntimeError("network use refused: " + event)

        sys.addaudithook(refuse)
        from bastion.risk.geo import BundledGeolocator
        geo = BundledGeolocator()
        geo.warm()
        print(geo.locate("90.84.12.34").country, geo.locate("2a01:e0a::1").country)
        import socket
        try:
            socket.getaddrinfo("example.org", 443)
        except RuntimeError:
            print("refused")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["FR", "FR", "refused"]  # the hook did refuse the network


def _write_mmdb(path: Path, *, with_city: bool) -> None:
    writer = MMDBWriter(
        ip_version=6,
        database_type="GeoLite2-City" if with_city else "GeoLite2-Country",
        ipv4_compatible=True,
    )
    london: dict[str, object] = {"country": {"iso_code": "GB"}}
    if with_city:
        london["location"] = {"latitude": 51.5142, "longitude": -0.0931, "accuracy_radius": 20}
    writer.insert_network(IPSet(["81.2.69.0/24"]), london)
    writer.insert_network(IPSet(["2a02:1000::/48"]), {"registered_country": {"iso_code": "SE"}})
    nonsense = {"latitude": 123.0, "longitude": float("nan"), "accuracy_radius": -5}
    writer.insert_network(
        IPSet(["81.2.70.0/24"]), {"country": {"iso_code": "GB"}, "location": nonsense}
    )
    writer.to_db_file(str(path))


def test_an_mmdb_city_database_gives_coordinates_and_its_accuracy_radius(tmp_path: Path) -> None:
    path = tmp_path / "city.mmdb"
    _write_mmdb(path, with_city=True)
    geo = open_geolocator(path)
    assert isinstance(geo, MmdbGeolocator)
    found = geo.locate(LONDON)
    assert (found.country, found.latitude, found.longitude, found.radius_km) == (
        "GB",
        51.5142,
        -0.0931,
        20.0,
    )
    assert geo.locate(LAN) == LOCAL
    assert geo.locate(TOKYO) == UNKNOWN  # not in this small database
    assert geo.locate("81.2.70.1") == country_location("GB")  # coordinates off the map
    geo.close()


def test_an_mmdb_without_coordinates_falls_back_to_the_country_point(tmp_path: Path) -> None:
    path = tmp_path / "country.mmdb"
    _write_mmdb(path, with_city=False)
    geo = MmdbGeolocator(path)
    assert geo.locate(LONDON) == country_location("GB")
    # registered_country is used when the record has no country of its own
    assert geo.locate("2a02:1000::5") == country_location("SE")
    geo.close()


@pytest.mark.parametrize("content", [None, b"", b"not a maxmind database" * 10])
def test_a_missing_or_corrupt_mmdb_is_a_configuration_error(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "broken.mmdb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigurationError, match="cannot be opened"):
        MmdbGeolocator(path)
