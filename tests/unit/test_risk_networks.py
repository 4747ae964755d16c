"""Client addresses, network keys and sets of networks (trusted, blocked, anonymisers)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bastion.errors import ConfigurationError
from bastion.risk.networks import (
    NetworkSet,
    is_local,
    load_network_file,
    network_key,
    parse_address,
    parse_networks,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90.84.12.34", "90.84.12.34"),
        ("  90.84.12.34\t", "90.84.12.34"),
        ("::ffff:90.84.12.34", "90.84.12.34"),
        ("2A01:E0A::1", "2a01:e0a::1"),
        ("fe80::1%eth0", "fe80::1"),
        (None, None),
        ("", None),
        ("90.84.12", None),
        ("90.84.12.34:443", None),
        ("10.0.0.0/8", None),
        ("1" * 65, None),
    ],
)
def test_parse_address(text: str | None, expected: str | None) -> None:
    found = parse_address(text)
    assert (str(found) if found is not None else None) == expected


def test_network_key_is_the_ipv4_address_or_the_ipv6_slash_64() -> None:
    assert network_key(ipaddress.ip_address("90.84.12.34")) == "90.84.12.34"
    first = network_key(ipaddress.ip_address("2a01:e0a:1:2::1"))
    assert first == "2a01:e0a:1:2::/64"
    assert network_key(ipaddress.ip_address("2a01:e0a:1:2:ffff::9")) == first
    assert network_key(ipaddress.ip_address("2a01:e0a:1:3::1")) != first


def test_local_means_not_globally_routable() -> None:
    assert is_local(ipaddress.ip_address("10.0.0.1"))
    assert is_local(ipaddress.ip_address("::1"))
    assert not is_local(ipaddress.ip_address("90.84.12.34"))


def test_network_set_membership_at_the_edges() -> None:
    networks = NetworkSet.of(["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "203.0.113.7/32"])
    inside = ["10.0.0.0", "10.255.255.255", "192.168.1.0", "192.168.1.255", "203.0.113.7",
              "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"]  # fmt: skip
    outside = ["9.255.255.255", "11.0.0.0", "192.168.0.255", "192.168.2.0", "203.0.113.6",
               "203.0.113.8", "2001:db9::", "::a00:1"]  # fmt: skip
    assert all(ipaddress.ip_address(a) in networks for a in inside)
    assert not any(ipaddress.ip_address(a) in networks for a in outside)
    assert "10.0.0.1" not in networks  # a string is not an address
    assert len(networks) == 4


def test_network_set_merges_overlapping_and_adjacent_ranges() -> None:
    networks = NetworkSet.of(["10.0.0.0/25", "10.0.0.128/25", "10.0.0.64/26", "10.0.1.0/24"])
    assert networks.v4_starts == (int(ipaddress.ip_address("10.0.0.0")),)
    assert networks.v4_ends == (int(ipaddress.ip_address("10.0.1.255")),)


def test_an_empty_set_contains_nothing() -> None:
    assert ipaddress.ip_address("1.2.3.4") not in NetworkSet()


def test_parse_networks_is_strict_about_host_bits_and_names_the_key() -> None:
    assert parse_networks(["10.0.0.0/8", "2001:db8::/32", "1.2.3.4"], where="k") == (
        "10.0.0.0/8",
        "2001:db8::/32",
        "1.2.3.4/32",
    )
    with pytest.raises(ValueError, match=r"risk.networks.trusted: '10.0.0.1/8' is not"):
        parse_networks(["10.0.0.1/8"], where="risk.networks.trusted")
    with pytest.raises(ValueError, match="CIDR string"):
        parse_networks([42], where="k")  # type: ignore[list-item]


def test_network_file_with_comments_blank_lines_and_host_bits(tmp_path: Path) -> None:
    path = tmp_path / "anonymisers.txt"
    path.write_text(
        "# Tor exit nodes\n\n185.220.101.1\n185.220.100.0/22  # a hosting range\n2a0b:f4c2::/40\n"
    )
    networks = load_network_file(path)
    for inside in ("185.220.101.1", "185.220.103.255", "2a0b:f4c2:1::1"):
        assert ipaddress.ip_address(inside) in networks
    assert ipaddress.ip_address("185.220.104.0") not in networks


def test_a_bad_line_in_a_network_file_is_a_configuration_error_naming_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "anonymisers.txt"
    path.write_text("185.220.101.1\nnot-a-network\n")
    with pytest.raises(ConfigurationError, match="line 2"):
        load_network_file(path)


def test_a_missing_network_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_network_file(tmp_path / "missing.txt")
