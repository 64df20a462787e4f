"""Which addresses are local hosts (devices) and which are remote peers, decided for whole columns.

Addresses arrive as (hi, lo) uint64 pairs, IPv4 as IPv4-mapped IPv6 (see decode.headers). A device is
a unicast address inside the local networks: RFC 1918, IPv4 link-local, IPv6 ULA and link-local by
default, plus any networks the operator configures. Multicast, broadcast and unspecified addresses
are never devices nor peers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_U64 = np.uint64
_MASK64 = (1 << 64) - 1

DEFAULT_LOCAL_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
)

_NOT_UNICAST: tuple[str, ...] = (
    "224.0.0.0/4",  # IPv4 multicast
    "255.255.255.255/32",
    "0.0.0.0/32",
    "ff00::/8",  # IPv6 multicast
    "::/128",
)


def _as_v6(net: str) -> ipaddress.IPv6Network:
    parsed = ipaddress.ip_network(net, strict=False)
    if isinstance(parsed, ipaddress.IPv4Network):
        mapped = ipaddress.IPv6Address(f"::ffff:{parsed.network_address}")
        return ipaddress.IPv6Network(f"{mapped}/{96 + parsed.prefixlen}")
    return parsed


@dataclass(frozen=True, slots=True)
class _Net:
    hi: int
    lo: int
    mask_hi: int
    mask_lo: int


def _compile(nets: Iterable[str]) -> list[_Net]:
    out = []
    for text in nets:
        net = _as_v6(text)
        value = int(net.network_address)
        mask = int(net.netmask)
        out.append(_Net(value >> 64, value & _MASK64, mask >> 64, mask & _MASK64))
    return out


def _member(nets: Sequence[_Net], hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    hit = np.zeros(hi.shape[0], dtype=bool)
    for net in nets:
        hit |= ((hi & _U64(net.mask_hi)) == _U64(net.hi)) & ((lo & _U64(net.mask_lo)) == _U64(net.lo))
    return hit


class Locality:
    """Classifies address columns as local (device), remote (peer) or neither."""

    def __init__(self, local_networks: Iterable[str] = DEFAULT_LOCAL_NETWORKS) -> None:
        self.local_networks = tuple(local_networks)
        for text in self.local_networks:
            ipaddress.ip_network(text, strict=False)  # ValueError names the bad network
        self._local = _compile(self.local_networks)
        self._special = _compile(_NOT_UNICAST)

    def unicast(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        return ~_member(self._special, hi, lo) & ((hi != 0) | (lo != 0))

    def local(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Unicast addresses inside the local networks."""
        return _member(self._local, hi, lo) & self.unicast(hi, lo)

    def classify(self, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(:meth:`unicast`, :meth:`local`) at once."""
        unicast = self.unicast(hi, lo)
        return unicast, _member(self._local, hi, lo) & unicast

    def is_local(self, address: str) -> bool:
        value = int(_as_v6(address).network_address)
        return self.pair_is_local(value >> 64, value & _MASK64)

    def pair_is_local(self, hi: int, lo: int) -> bool:
        """:meth:`local` for one (hi, lo) pair, in plain Python (a numpy call costs ~20x more)."""
        if hi == 0 and lo == 0:
            return False
        for net in self._special:
            if (hi & net.mask_hi) == net.hi and (lo & net.mask_lo) == net.lo:
                return False
        return any((hi & net.mask_hi) == net.hi and (lo & net.mask_lo) == net.lo for net in self._local)


def mac_is_unicast(mac: np.ndarray) -> np.ndarray:
    """Non-zero MACs whose group bit (LSB of the first octet) is clear."""
    return (mac != 0) & ((mac & _U64(1 << 40)) == 0)


def address_text(hi: int, lo: int) -> str:
    """Text form of an address pair: dotted IPv4 for IPv4-mapped addresses, else IPv6."""
    hi, lo = int(hi), int(lo)
    if hi == 0 and lo >> 32 == 0xFFFF:
        return socket.inet_ntop(socket.AF_INET, (lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return _ipv6_text(hi, lo)


@lru_cache(maxsize=16384)
def _ipv6_text(hi: int, lo: int) -> str:
    addr = ipaddress.IPv6Address((hi << 64) | lo)
    mapped = addr.ipv4_mapped
    return str(mapped) if mapped is not None else str(addr)


def address_pair(text: str) -> tuple[int, int]:
    """The (hi, lo) pair for an address given as text (IPv4 or IPv6); ValueError if it is neither."""
    try:
        if ":" in text:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
            return value >> 64, value & _MASK64
        return 0, 0xFFFF00000000 | int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, TypeError):
        raise ValueError(f"{text!r} is not an IP address") from None


def mac_text(mac: int) -> str:
    raw = int(mac).to_bytes(6, "big")
    return ":".join(f"{b:02x}" for b in raw)


def mac_value(text: str) -> int:
    return int(text.replace(":", "").replace("-", ""), 16)
