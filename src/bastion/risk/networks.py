"""Client addresses and sets of networks (trusted, blocked, anonymisers).

An address that does not parse is not an error: it is "no address" and the signals that
need one stay silent. IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``) are their IPv4
address. A *network key* groups the addresses one client is likely to use: the address
itself for IPv4, its /64 for IPv6 (one home or phone gets a whole /64).

A ``NetworkSet`` answers membership in O(log n): networks are merged into sorted,
disjoint integer ranges per IP version and searched with ``bisect``, so an anonymiser list
of thousands of ranges costs what a list of three does.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bastion.errors import ConfigurationError

__all__ = [
    "Address",
    "NetworkSet",
    "is_local",
    "load_network_file",
    "network_key",
    "parse_address",
    "parse_networks",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_ADDRESS_TEXT = 64
IPV6_CLIENT_PREFIX = 64
MAX_FILE_BYTES = 16 * 1024 * 1024


def parse_address(text: str | None) -> Address | None:
    """The address in ``text`` (surrounding blanks and an IPv6 zone dropped), or None."""
    if not text or len(text) > MAX_ADDRESS_TEXT:
        return None
    return _parse(text)


@lru_cache(maxsize=65_536)  # addresses are immutable; parsing costs ~20 µs in pure Python
def _parse(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_local(address: Address) -> bool:
    """Private, loopback, link-local, shared (CGNAT), reserved or documentation space:
    anything that is not a globally routable address has no place on a map."""
    return not address.is_global


def network_key(address: Address) -> str:
    """The address (IPv4) or its /64 (IPv6): what reputation and "same network" compare."""
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


def parse_networks(values: Iterable[str], *, where: str) -> tuple[str, ...]:
    """Validated CIDR strings in canonical form; raises ``ValueError`` naming the bad one.

    A bare address is its own /32 or /128. Host bits set (``10.0.0.1/8``) are refused:
    a typo there would silently cover another network than the one meant.
    """
    canonical = []
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"{where}: every entry must be a CIDR string")
        try:
            network = ipaddress.ip_network(value.strip(), strict=True)
        except ValueError:
            raise ValueError(f"{where}: {value[:64]!r} is not a network in CIDR form") from None
        canonical.append(str(network))
    return tuple(canonical)


@dataclass(frozen=True)
class NetworkSet:
    """Disjoint sorted ranges ``[start, end]`` per IP version; membership by bisection."""

    v4_starts: tuple[int, ...] = ()
    v4_ends: tuple[int, ...] = ()
    v6_starts: tuple[int, ...] = ()
    v6_ends: tuple[int, ...] = ()

    @classmethod
    def of(cls, networks: Iterable[str]) -> NetworkSet:
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in networks:
            network = ipaddress.ip_network(text, strict=False)
            start = int(network.network_address)
            ranges[network.version].append((start, start + network.num_addresses - 1))
        v4 = _merge(ranges[4])
        v6 = _merge(ranges[6])
        return cls(
            tuple(s for s, _ in v4),
            tuple(e for _, e in v4),
            tuple(s for s, _ in v6),
            tuple(e for _, e in v6),
        )

    def __contains__(self, address: object) -> bool:
        if isinstance(address, ipaddress.IPv4Address):
            starts, ends = self.v4_starts, self.v4_ends
        elif isinstance(address, ipaddress.IPv6Address):
            starts, ends = self.v6_starts, self.v6_ends
        else:
            return False
        value = int(address)
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= ends[index]

    def __len__(self) -> int:
        return len(self.v4_starts) + len(self.v6_starts)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def load_network_file(path: Path) -> NetworkSet:
    """A list of networks, one CIDR or address a line; ``#`` starts a comment.

    Raises ``ConfigurationError`` naming the file and line of the first bad entry: a list
    that silently lost half its entries would be worse than no list.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"The network list {path} cannot be read ({exc.strerror})."
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigurationError(f"The network list {path} is larger than 16 MiB.")
    networks = []
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            networks.append(str(ipaddress.ip_network(line, strict=False)))
        except ValueError:
            raise ConfigurationError(
                f"The network list {path}, line {number}: not an address or CIDR network."
            ) from None
    return NetworkSet.of(networks)
