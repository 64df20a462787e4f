"""Turning alerts and device rows into the anonymized metadata that goes to Asgard.

What leaves the network, and what each input becomes:

- an IP address: ``geo:CC`` (its country, or ``region:NAME`` with ``ip_detail = "region"``,
  ``geo:unknown`` when no country is known); a private one (RFC 1918, CGNAT, link-local, ULA)
  ``net:HASH/24`` (``/64`` for IPv6), a keyed hash of its network prefix, so devices of one LAN
  share it and nobody without the sensor's secret can reverse it; special ranges ``scope:NAME``;
- a MAC address: ``dev:HASH`` (a keyed pseudonym), plus a device-type fingerprint beside it:
  the guessed type, the IEEE vendor of the OUI (looked up again here, never copied) and whether
  the MAC is randomized;
- a DNS name: under the default policy the registered domain of an external name
  (``cdn.tracker.example`` -> ``tracker.example``); local names (single label, .local, .lan,
  ...) and the device's own hostname never; with ``names = "drop"`` no name at all;
- evidence: numbers and booleans as they are; strings only when they are an address (made one of
  the tokens above), a service or protocol label, an ISO time, a country code or a listed label
  (:mod:`.vocabulary`); everything else (free text, summaries, User-Agents) is left out and counted
  in ``redacted``.

Hashes are HMAC-SHA256 with the per-sensor secret (:class:`~.identity.SensorIdentity`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from heimdal_tui.asgard.names import external_domain, looks_like_name
from heimdal_tui.asgard.regions import region_of
from heimdal_tui.asgard.vocabulary import (
    DEVICE_NAME_KEYS,
    ENUM_VALUES,
    EVIDENCE_KEYS,
    KNOWN_ALERT_KINDS,
    KNOWN_DEVICE_TYPES,
)
from heimdal_tui.common.text import safe_text
from heimdal_tui.detect.alerts import Alert
from heimdal_tui.detect.geo import CountryLookup
from heimdal_tui.devices.identity import is_locally_administered, vendor_for_mac
from heimdal_tui.devices.locality import address_pair

MAX_DEPTH = 6
MAX_LIST = 100
MAX_TEXT = 512
HASH_CHARS = 16
NET_HASH_CHARS = 12

_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
) + tuple(ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10"))
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")
_SERVICE = re.compile(r"^(tcp|udp|sctp|icmp|icmp6|arp)/\d{1,5}( \(served\))?$")
_PROTOCOL = re.compile(r"^(tcp|udp|icmp|icmp6|igmp|arp|ip-\d{1,3}|ether-0x[0-9a-f]{4})$")
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PROFILE = re.compile(r"^(?P<type>[a-z_]{1,32})@[A-Za-z0-9._-]{1,32}$")
_COMPOSITE = re.compile(r"^(?P<head>[^ ()]+) \((?P<inner>[^()]*)\)$")
_INNER_WORDS = frozenset({"peer"})
_SEVERITIES = ("low", "medium", "high", "critical")


class _Dropped:
    """Marks a value left out of a payload."""


DROPPED = _Dropped()


class Anonymizer:
    """Anonymizes with one sensor's secret. ``names`` is the DNS name policy ("registered_domain"
    or "drop"), ``ip_detail`` what a public address becomes ("country" or "region")."""

    def __init__(
        self,
        secret: bytes,
        *,
        names: str = "registered_domain",
        ip_detail: str = "country",
        countries: CountryLookup | None = None,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the anonymizer secret must be at least 16 bytes")
        self._secret = secret
        self.names = names
        self.ip_detail = ip_detail
        self.countries = countries or CountryLookup()
        # The same few addresses come back in every alert and summary: tokens are cached.
        self.ip = lru_cache(maxsize=65_536)(self._ip)  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"Anonymizer(names={self.names!r}, ip_detail={self.ip_detail!r})"

    # -- primitives ----------------------------------------------------------------------------
    def keyed(self, purpose: str, value: str, chars: int = HASH_CHARS) -> str:
        """A keyed hash of ``value`` (hex): stable for this sensor, meaningless without its secret."""
        digest = hmac.new(self._secret, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return digest.hexdigest()[:chars]

    def ip(self, text: str) -> str | None:
        """The token for an address given as text; None when it is not an address."""
        return self._ip(text)

    def _ip(self, text: str) -> str | None:
        try:
            addr = ipaddress.ip_address(text.strip().split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return self._address_token(addr)

    def _address_token(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
        if addr.is_unspecified:
            return "scope:unspecified"
        if addr.is_loopback:
            return "scope:loopback"
        if addr.is_multicast:
            return "scope:multicast"
        if isinstance(addr, ipaddress.IPv4Address) and int(addr) == 0xFFFFFFFF:
            return "scope:broadcast"
        if any(addr in net for net in _PRIVATE_NETS):
            length = 24 if addr.version == 4 else 64
            prefix = ipaddress.ip_network(f"{addr}/{length}", strict=False)
            return f"net:{self.keyed('net', str(prefix), NET_HASH_CHARS)}/{length}"
        if not addr.is_global:
            return "scope:reserved"
        hi, lo = address_pair(str(addr))
        country = self.countries.country(hi, lo)
        if not country or not _COUNTRY.match(country):
            return "geo:unknown"
        if self.ip_detail == "region":
            return f"region:{region_of(country)}"
        return f"geo:{country}"

    def network(self, text: str) -> str | None:
        """The token for a network (``addr/len``): its address's token, with the length when public."""
        try:
            net = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            return None
        token = self._address_token(net.network_address)
        return token if "/" in token or token.startswith("scope:") else f"{token}/{net.prefixlen}"

    def mac(self, mac: str) -> str | None:
        digits = re.sub(r"[^0-9a-f]", "", mac.lower())
        if len(digits) != 12:
            return None
        return f"dev:{self.keyed('mac', digits)}"

    def device_pseudonym(self, mac: str | None, key: int | None) -> str:
        token = self.mac(mac) if mac else None
        if token is not None:
            return token
        return f"dev:{self.keyed('device', str(key))}"

    def fingerprint(self, mac: str | None, device_type: Any, confidence: Any = None) -> dict[str, Any]:
        """What kind of device this is, without saying which one."""
        kind = (
            device_type if isinstance(device_type, str) and device_type in KNOWN_DEVICE_TYPES else "unknown"
        )
        valid_mac = isinstance(mac, str) and self.mac(mac) is not None
        vendor = vendor_for_mac(mac) if valid_mac and isinstance(mac, str) else None
        out: dict[str, Any] = {
            "type": kind,
            "vendor": safe_text(vendor, 64) if vendor else None,
            "randomized_mac": bool(valid_mac and isinstance(mac, str) and is_locally_administered(mac)),
        }
        if confidence is not None:
            out["type_confidence"] = _number(confidence)
        return out

    def name(self, text: str) -> str | None:
        return external_domain(text, self.names)

    def text(self, value: str, key: str | None = None) -> str | None:
        """A string as it may leave: a token, a kept label, or None (left out)."""
        if key in DEVICE_NAME_KEYS or not isinstance(value, str):
            return None
        text = value.strip()
        if not text or len(text) > MAX_TEXT:
            return None
        if text in ENUM_VALUES or _SERVICE.match(text) or _PROTOCOL.match(text) or _ISO_TIME.match(text):
            return text
        if _COUNTRY.match(text):
            return text
        profile = _PROFILE.match(text)
        if profile is not None and profile["type"] in KNOWN_DEVICE_TYPES:
            return text  # a golden profile's label (type@version): Asgard's own vocabulary
        token = self.ip(text) if (":" in text or "." in text) and "/" not in text else None
        if token is not None:
            return token
        if _MAC.match(text):
            return self.mac(text)
        composite = _COMPOSITE.match(text)
        if composite is None and "/" in text:
            return self.network(text)
        if composite is not None:
            head = self.text(composite["head"], key)
            if head is None:
                return None
            inner = composite["inner"]
            word = ""
            first, _, rest = inner.partition(" ")
            if first in _INNER_WORDS and rest:
                word, inner = first + " ", rest
            inside = self.text(inner, key)
            return head if inside is None else f"{head} ({word}{inside})"
        if looks_like_name(text):
            return self.name(text)
        return None

    def value(self, value: Any, key: str | None = None, depth: int = 0) -> Any:
        """Any JSON-ready evidence value, anonymized; :data:`DROPPED` when nothing of it may leave."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return _number(value)
        if isinstance(value, str):
            out = self.text(value, key)
            return DROPPED if out is None else out
        if depth >= MAX_DEPTH:
            return DROPPED
        if isinstance(value, Mapping):
            return self.mapping(value, depth + 1)
        if isinstance(value, list | tuple | set | frozenset):
            items = [self.value(v, key, depth + 1) for v in list(value)[:MAX_LIST]]
            return [v for v in items if v is not DROPPED]
        return DROPPED

    def mapping(self, data: Mapping[Any, Any], depth: int = 0) -> dict[str, Any]:
        """A dict of evidence: known keys keep their name; other keys count as data themselves
        (a country, a record type, an address: made a token, or left out)."""
        out: dict[str, Any] = {}
        for raw_key, raw_value in list(data.items())[: MAX_LIST * 4]:
            if not isinstance(raw_key, str):
                continue
            key = raw_key if raw_key in EVIDENCE_KEYS else self.text(raw_key)
            if key is None:
                continue
            converted = self.value(raw_value, raw_key if raw_key in EVIDENCE_KEYS else None, depth)
            if converted is not DROPPED:
                out[key] = converted
        return out

    # -- payloads ------------------------------------------------------------------------------
    def alert(self, alert: Alert) -> dict[str, Any]:
        """The ``data`` of an anomaly item (docs/asgard-api.md, "Anomaly item")."""
        from heimdal_tui.devices.snapshot import iso

        ref = alert.device
        peer = self.text(alert.peer) if isinstance(alert.peer, str) else None
        severity = str(alert.severity)
        return {
            "alert": self.keyed("alert", str(alert.id)),
            "kind": alert.kind if alert.kind in KNOWN_ALERT_KINDS else "other",
            "severity": severity if severity in _SEVERITIES else "low",
            "score": _number(alert.score),
            "count": int(alert.count),
            "first_seen": iso(float(alert.first_seen)),
            "last_seen": iso(float(alert.last_seen)),
            "device": {
                "pseudonym": self.device_pseudonym(ref.mac, ref.key),
                "address": self.ip(ref.ip) if isinstance(ref.ip, str) else None,
                **self.fingerprint(ref.mac, ref.type),
            },
            "peer": peer,
            "evidence": self.mapping(alert.evidence or {}),
        }

    def device(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The ``data`` of a device item, from a device-table row (devices/snapshot.py)."""
        mac = row.get("mac") if isinstance(row.get("mac"), str) else None
        addresses: list[str] = []
        for ip in _strings(row.get("ips")):
            token = self.ip(ip)
            if token is not None and token not in addresses:
                addresses.append(token)
        peers = []
        for peer in list(row.get("top_peers") or [])[:MAX_LIST]:
            if not isinstance(peer, Mapping):
                continue
            peer_ip = peer.get("ip")
            peer_name = peer.get("name")
            peers.append(
                {
                    "peer": self.ip(peer_ip) if isinstance(peer_ip, str) else None,
                    "domain": self.name(peer_name) if isinstance(peer_name, str) else None,
                    "packets": _number(peer.get("packets")),
                    "bytes": _number(peer.get("bytes")),
                }
            )
        key = row.get("device")
        return {
            "device": {
                "pseudonym": self.device_pseudonym(mac, key if isinstance(key, int) else None),
                **self.fingerprint(mac, row.get("device_type"), row.get("device_type_confidence")),
            },
            "addresses": addresses,
            "first_seen": _iso_or_none(row.get("first_seen")),
            "last_seen": _iso_or_none(row.get("last_seen")),
            **{
                field: _number(row.get(field))
                for field in (
                    "packets_in",
                    "packets_out",
                    "bytes_in",
                    "bytes_out",
                    "bps_10s",
                    "bps_1m",
                    "bps_5m",
                    "peers",
                    "dns_names",
                )
            },
            "top_peers": peers,
            # Sorted: a set, in a stable order, so an unchanged device gives the same item (and key).
            "ports": sorted({p for p in _strings(row.get("ports")) if _SERVICE.match(p)})[:MAX_LIST],
            "protocols": sorted({p for p in _strings(row.get("protocols")) if _PROTOCOL.match(p)})[:MAX_LIST],
            "sparkline": [_number(v) for v in list(row.get("sparkline") or [])[:MAX_LIST]],
        }


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    return int(value)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value[: MAX_LIST * 4] if isinstance(v, str)]


def _iso_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and _ISO_TIME.match(value) else None
