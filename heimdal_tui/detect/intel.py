"""Threat-intelligence indicators: addresses, networks and domains known to be malicious.

Indicators come from files (see :meth:`ThreatIntel.load_file`) or one at a time from code (the Asgard
link calls :meth:`ThreatIntel.add`). Three types:

- ``ip``: one IPv4 or IPv6 address (stored as a /32 or /128 network);
- ``cidr``: a network; an address matches the longest listed network holding it;
- ``domain``: a DNS name; it matches itself and every name under it (``evil.example`` matches
  ``cdn.evil.example`` but not ``notevil.example``).

Addresses are handled as the pipeline's (hi, lo) uint64 pairs, IPv4 as IPv4-mapped IPv6, so one
table serves both families. Networks are kept in one dict per prefix length: a lookup masks the
address once per prefix length in use (at most 129, usually a handful) and does one dict probe each;
:meth:`ThreatIntel.match_ips` does the same for whole columns (numpy hashes and ``searchsorted``).

File formats, chosen per line: a line starting with ``{`` is a JSON object with the keys
``indicator, type, confidence, source, expiry``; a line with a comma is a CSV row with the columns
``indicator,type,confidence,source,expiry`` (a header row naming the columns may reorder them);
anything else is a bare indicator (an address, a network or a domain; a hosts-file line
``0.0.0.0 evil.example`` gives the domain). ``#`` starts a comment; blank lines are ignored. A bad
line is counted and reported by line number, never fatal.

``confidence`` is 0..1 (0..100 is accepted and scaled); ``expiry`` is epoch seconds or an ISO 8601
date/time (UTC when no zone is given). Expiry is compared with the capture clock of whoever asks
(:meth:`expire`, and the detector at match time), never with the wall clock here.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_CONFIDENCE", "Indicator", "LoadReport", "ThreatIntel", "parse_expiry"]

DEFAULT_CONFIDENCE = 0.8
MAX_REPORTED_ERRORS = 100
MAX_LINE_CHARS = 4096
_MASK64 = (1 << 64) - 1
_V4_MAPPED = 0xFFFF << 32

_TYPE_ALIASES = {
    "": "",
    "auto": "",
    "ip": "ip",
    "ipv4": "ip",
    "ipv6": "ip",
    "ip-dst": "ip",
    "ip-src": "ip",
    "address": "ip",
    "addr": "ip",
    "cidr": "cidr",
    "net": "cidr",
    "network": "cidr",
    "subnet": "cidr",
    "ip-range": "cidr",
    "domain": "domain",
    "hostname": "domain",
    "host": "domain",
    "fqdn": "domain",
    "dns": "domain",
}
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_CSV_COLUMNS = ("indicator", "type", "confidence", "source", "expiry")
_HOSTS_SINKS = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1"})


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator: ``value`` is canonical text (an address, ``net/len`` or a lower-case domain)."""

    value: str
    type: str  # "ip", "cidr" or "domain"
    confidence: float = DEFAULT_CONFIDENCE
    source: str = ""
    expiry: float | None = None  # epoch seconds; None: never expires

    def live(self, now: float | None) -> bool:
        return self.expiry is None or now is None or self.expiry > now


@dataclass
class LoadReport:
    """What :meth:`ThreatIntel.load_file` did: ``errors`` name the line of each bad entry."""

    loaded: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(message)
        elif len(self.errors) == MAX_REPORTED_ERRORS:
            self.errors.append("... more errors not listed")


def parse_expiry(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 date/time (UTC when unzoned); None when empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expiry {value!r} is not a time")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text or text.lower() in ("none", "null", "never", "-"):
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expiry {text!r} is neither epoch seconds nor an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _confidence(value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_CONFIDENCE
    if isinstance(value, bool):
        raise ValueError(f"confidence {value!r} is not a number")
    try:
        conf = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"confidence {value!r} is not a number") from None
    if conf != conf or conf < 0 or conf > 100:  # NaN or out of range
        raise ValueError(f"confidence {value!r} is outside 0..1 (or 0..100)")
    return conf / 100.0 if conf > 1.0 else conf


def _domain(text: str) -> str | None:
    name = text.strip().lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]
    if not name or len(name) > 253:
        return None
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return None
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    return name


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)


def _as_128(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    """(value, prefix length) of ``net`` in the IPv4-mapped IPv6 space."""
    if isinstance(net, ipaddress.IPv4Network):
        return _V4_MAPPED | int(net.network_address), 96 + net.prefixlen
    return int(net.network_address), net.prefixlen


def _prefix_mask(length: int) -> int:
    return ((1 << 128) - 1) ^ ((1 << (128 - length)) - 1) if length else 0


class ThreatIntel:
    """The indicator table; safe to :meth:`add` to from another thread while a detector matches."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._nets: dict[int, dict[int, Indicator]] = {}  # prefix length -> network value -> indicator
        self._domains: dict[str, Indicator] = {}
        self.version = 0  # bumped on every change (detectors cache derived tables by it)
        self._columns: tuple[int, list[tuple[int, int, int, np.ndarray]]] | None = None
        self._lengths: list[tuple[int, int]] | None = None  # prefix lengths in use, longest first

    def __len__(self) -> int:
        with self._lock:
            return sum(len(d) for d in self._nets.values()) + len(self._domains)

    @property
    def has_addresses(self) -> bool:
        with self._lock:
            return any(self._nets.values())

    @property
    def has_domains(self) -> bool:
        return bool(self._domains)

    def indicators(self) -> Iterator[Indicator]:
        with self._lock:
            items = [i for d in self._nets.values() for i in d.values()] + list(self._domains.values())
        yield from items

    # -- adding ---------------------------------------------------------------------------------
    def add(
        self,
        indicator: str,
        type: str = "",
        confidence: float | str | None = DEFAULT_CONFIDENCE,
        source: str = "",
        expiry: float | str | None = None,
    ) -> Indicator:
        """Add (or replace) one indicator; ``type`` "" guesses it. ValueError when it is not valid."""
        text = str(indicator).strip()
        kind = _TYPE_ALIASES.get(str(type).strip().lower())
        if kind is None:
            raise ValueError(f"unknown indicator type {type!r} (ip, cidr or domain)")
        if not text:
            raise ValueError("empty indicator")
        conf = _confidence(confidence)
        exp = parse_expiry(expiry)
        if kind in ("", "ip", "cidr") and (kind or _looks_like_address(text)):
            try:
                net = _network(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address or network") from None
            if kind == "ip" and net.num_addresses != 1:
                raise ValueError(f"{text!r} is a network, not one address (use type cidr)")
            value, length = _as_128(net)
            found = "ip" if net.num_addresses == 1 else "cidr"
            canonical = str(net.network_address) if found == "ip" else str(net)
            item = Indicator(canonical, found, conf, str(source), exp)
            with self._lock:
                self._nets.setdefault(length, {})[value] = item
                self._changed()
            return item
        name = _domain(text)
        if name is None or (kind == "" and "." not in name):
            raise ValueError(f"{text!r} is not an IP address, network or domain name")
        item = Indicator(name, "domain", conf, str(source), exp)
        with self._lock:
            self._domains[name] = item
            self._changed()
        return item

    def remove(self, indicator: str) -> bool:
        """Forget one indicator (given as added); True when it was there."""
        text = indicator.strip()
        with self._lock:
            if _looks_like_address(text):
                try:
                    value, length = _as_128(_network(text))
                except ValueError:
                    return False
                gone = self._nets.get(length, {}).pop(value, None) is not None
            else:
                name = _domain(text)
                gone = name is not None and self._domains.pop(name, None) is not None
            if gone:
                self._changed()
            return gone

    def clear(self) -> None:
        with self._lock:
            self._nets.clear()
            self._domains.clear()
            self._changed()

    def expire(self, now: float) -> int:
        """Drop the indicators whose expiry is at or before ``now``; returns how many went."""
        with self._lock:
            gone = 0
            for table in self._nets.values():
                dead = [k for k, v in table.items() if v.expiry is not None and v.expiry <= now]
                for k in dead:
                    del table[k]
                gone += len(dead)
            dead_names = [
                name for name, v in self._domains.items() if v.expiry is not None and v.expiry <= now
            ]
            for name in dead_names:
                del self._domains[name]
            gone += len(dead_names)
            if gone:
                self._changed()
            return gone

    def _changed(self) -> None:
        self.version += 1
        self._columns = None
        self._lengths = None

    # -- loading --------------------------------------------------------------------------------
    def load_file(self, path: str | Path, source: str | None = None) -> LoadReport:
        """Load indicators from a file (formats in the module docstring). OSError when unreadable."""
        path = Path(path)
        with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
            return self.load_lines(handle, source if source is not None else path.name, str(path))

    def load_lines(self, lines: Iterable[str], source: str = "", label: str = "") -> LoadReport:
        report = LoadReport()
        where = f"{label} line " if label else "line "
        columns: tuple[str, ...] = _CSV_COLUMNS
        for number, raw in enumerate(lines, start=1):
            line = raw.strip().lstrip("\ufeff")
            if not line or line.startswith("#"):
                continue
            if len(line) > MAX_LINE_CHARS:
                report.error(f"{where}{number}: line longer than {MAX_LINE_CHARS} characters")
                continue
            try:
                if line.startswith("{"):
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError("a JSON line must be an object")
                    fields = {str(k).lower(): v for k, v in record.items()}
                elif "," in line:
                    cells = [c.strip() for c in next(csv.reader([line]))]
                    lowered = tuple(c.lower() for c in cells)
                    if "indicator" in lowered:  # a header row: it names (and may reorder) the columns
                        columns = lowered
                        continue
                    fields = dict(zip(columns, cells, strict=False))
                else:
                    text = line.split("#", 1)[0].strip()
                    parts = text.split()
                    if len(parts) == 2 and parts[0] in _HOSTS_SINKS:
                        text = parts[1]
                    elif len(parts) != 1:
                        raise ValueError(f"expected one indicator, found {len(parts)} words")
                    fields = {"indicator": text}
                value = fields.get("indicator")
                if value is None or not str(value).strip():
                    raise ValueError("no indicator")
                self.add(
                    str(value),
                    str(fields.get("type") or ""),
                    confidence=fields.get("confidence"),
                    source=str(fields.get("source") or source),
                    expiry=fields.get("expiry"),
                )
                report.loaded += 1
            except (ValueError, TypeError, csv.Error) as exc:
                report.error(f"{where}{number}: {exc}")
        return report

    # -- matching -------------------------------------------------------------------------------
    def match_ip(self, hi: int, lo: int) -> Indicator | None:
        """The most specific address/network indicator holding the address (hi, lo), or None."""
        value = ((int(hi) & _MASK64) << 64) | (int(lo) & _MASK64)
        lengths = self._lengths
        if lengths is None:
            with self._lock:
                lengths = self._lengths = [
                    (length, _prefix_mask(length))
                    for length in sorted(self._nets, reverse=True)
                    if self._nets[length]
                ]
        nets = self._nets
        for length, mask in lengths:
            table = nets.get(length)
            if table:
                hit = table.get(value & mask)
                if hit is not None:
                    return hit
        return None

    def match_address(self, text: str) -> Indicator | None:
        """:meth:`match_ip` for an address given as text (None when it is not an address)."""
        value = _address_value(text)
        if value is None:
            return None
        return self.match_ip(value >> 64, value & _MASK64)

    def match_domain(self, name: str) -> Indicator | None:
        """The indicator for ``name`` or its nearest listed parent domain, or None."""
        if not self._domains or not name:
            return None
        labels = name.strip().lower().rstrip(".").split(".")
        domains = self._domains
        for start in range(len(labels)):
            hit = domains.get(".".join(labels[start:]))
            if hit is not None:
                return hit
        return None

    def match_ips(self, hi: np.ndarray, lo: np.ndarray) -> list[Indicator | None]:
        """:meth:`match_ip` for whole columns.

        Per prefix length in use: the masked addresses are hashed to one uint64 and looked up with
        ``searchsorted`` in the sorted hashes of that length's networks; the few candidates are then
        confirmed exactly in the dict (a hash collision never yields a false match).
        """
        n = int(hi.shape[0])
        result: list[Indicator | None] = [None] * n
        if n == 0 or not self.has_addresses:
            return result
        hi = hi.astype(np.uint64, copy=False)
        lo = lo.astype(np.uint64, copy=False)
        open_rows = np.ones(n, dtype=bool)
        for length, mask_hi, mask_lo, hashes in self._column_tables():  # longest prefix first
            m_hi = hi & np.uint64(mask_hi)
            m_lo = lo & np.uint64(mask_lo)
            keys = _hash_pair(m_hi, m_lo)
            pos = np.minimum(np.searchsorted(hashes, keys), hashes.shape[0] - 1)
            candidates = np.flatnonzero((hashes[pos] == keys) & open_rows)
            if candidates.shape[0] == 0:
                continue
            table = self._nets.get(length, {})
            for row in candidates.tolist():
                hit = table.get((int(m_hi[row]) << 64) | int(m_lo[row]))
                if hit is not None:
                    result[row] = hit
                    open_rows[row] = False
        return result

    def _column_tables(self) -> list[tuple[int, int, int, np.ndarray]]:
        with self._lock:
            cached = self._columns
            if cached is not None and cached[0] == self.version:
                return cached[1]
            tables = []
            for length in sorted(self._nets, reverse=True):
                table = self._nets[length]
                if not table:
                    continue
                mask = _prefix_mask(length)
                values = list(table.keys())
                v_hi = np.array([v >> 64 for v in values], dtype=np.uint64)
                v_lo = np.array([v & _MASK64 for v in values], dtype=np.uint64)
                tables.append((length, mask >> 64, mask & _MASK64, np.sort(_hash_pair(v_hi, v_lo))))
            self._columns = (self.version, tables)
            return tables


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _hash_pair(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return _mix(_mix(hi ^ np.uint64(0x9E3779B97F4A7C15)) ^ lo)


def _address_value(text: str) -> int | None:
    """The 128-bit value (IPv4 mapped) of a textual address, strictly parsed; None otherwise."""
    text = text.strip()
    try:
        if ":" in text:
            return int.from_bytes(socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0]), "big")
        return _V4_MAPPED | int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        return None


def _looks_like_address(text: str) -> bool:
    """Whether ``text`` should be read as an address or network (vs a domain)."""
    head = text.split("/", 1)[0]
    if ":" in head:
        return True
    return bool(head) and all(part.isdigit() for part in head.split(".")) and head.count(".") == 3
