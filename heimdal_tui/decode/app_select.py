"""Choosing, for a whole decoded batch, the few payloads worth a Python parser, and parsing them.

The choice is vectorized (ports and first payload bytes); only the chosen rows cross into Python.
A payload that fails to parse is counted by reason and skipped: its packet still counts everywhere
else.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from heimdal_tui.decode.app.dispatch import APP_TCP_PORTS, APP_UDP_PORTS, AppResult, parse_app
from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app.http import HTTP_METHOD_PREFIXES
from heimdal_tui.decode.headers import PROTO_TCP, PROTO_UDP, DecodedBatch

_UDP_PORTS = np.array(sorted(APP_UDP_PORTS), dtype=np.int64)
_TCP_PORTS = np.array(sorted(APP_TCP_PORTS), dtype=np.int64)
_TLS_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
# The leading payload bytes read for the choice: enough for the longest HTTP method prefix.
_HEAD = max(8, max(len(p) for p in HTTP_METHOD_PREFIXES))


# Announcements (mDNS, SSDP, NetBIOS) repeat verbatim, and DNS messages repeat but for their 16-bit
# ID (the same lookups, the same answers): their parse is cached per payload (DNS: without the ID,
# which nothing downstream reads), and a repeat from the same sender is flagged so identity code can
# skip it.
_ANNOUNCE_PORTS = frozenset({5353, 1900, 137})
_DNS_PORTS = frozenset({53, 5355})
_CACHE_SIZE = 4096
_MISS = object()


@dataclass(frozen=True, slots=True)
class AppEvent:
    """One parsed application message and the packet it came in (row of the decoded batch)."""

    row: int
    ts: float
    proto: int
    src_hi: int
    src_lo: int
    dst_hi: int
    dst_lo: int
    src_mac: int
    dst_mac: int
    sport: int
    dport: int
    message: AppResult
    repeat: bool = False  # the same sender sent the very same announcement recently


def candidate_rows(d: DecodedBatch) -> np.ndarray:
    """Rows whose payload may hold a message one of the application parsers reads.

    UDP by port; TCP on a DNS port, or starting a TLS ClientHello record (0x16, version 3.x, handshake
    type 1), or starting with an HTTP method and its space: exactly the TCP payloads for which
    :func:`parse_app` would not return None straight away (a response ``HTTP/1.1 ...`` or a TLS
    record of another kind never leaves numpy).
    """
    has = d.payload_len > 0
    if not has.any():
        return np.zeros(0, dtype=np.int64)
    udp = has & (d.proto == PROTO_UDP)
    udp &= np.isin(d.sport, _UDP_PORTS) | np.isin(d.dport, _UDP_PORTS)
    chosen = np.flatnonzero(udp)
    tcp = np.flatnonzero(has & (d.proto == PROTO_TCP))
    if tcp.shape[0] == 0:
        return chosen
    # The first _HEAD payload bytes of each TCP row (bytes past the payload are masked by length).
    length = d.payload_len[tcp]
    last = d.data.shape[0] - 1
    head = d.data[np.minimum(d.payload_off[tcp][:, None] + np.arange(_HEAD), last)]
    tls = (length > 5) & (head[:, 0] == _TLS_HANDSHAKE) & (head[:, 1] == 3) & (head[:, 2] <= 4)
    tls &= head[:, 5] == _CLIENT_HELLO
    http = np.zeros(tcp.shape[0], dtype=bool)
    for prefix in HTTP_METHOD_PREFIXES:
        pattern = np.frombuffer(prefix, dtype=np.uint8)
        http |= (length >= pattern.shape[0]) & (head[:, : pattern.shape[0]] == pattern).all(axis=1)
    dns_tcp = np.isin(d.sport[tcp], _TCP_PORTS) | np.isin(d.dport[tcp], _TCP_PORTS)
    chosen_tcp = tcp[tls | http | dns_tcp]
    if chosen.shape[0] == 0:
        return chosen_tcp
    return np.union1d(chosen, chosen_tcp)


class AppParser:
    """Parses chosen payloads, with a bounded cache for repeated announcements."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[int, int, bytes], AppResult | MalformedPayload | None] = OrderedDict()

    def parse_rows(self, d: DecodedBatch, rows: np.ndarray, errors: Counter[str]) -> list[AppEvent]:
        """Parse the payloads of ``rows``; malformed ones are counted in ``errors`` by reason."""
        return parse_rows(d, rows, errors, self._cache)


def parse_rows(
    d: DecodedBatch,
    rows: np.ndarray,
    errors: Counter[str],
    cache: OrderedDict[tuple[int, int, bytes], AppResult | MalformedPayload | None] | None = None,
) -> list[AppEvent]:
    """Parse the payloads of ``rows``; malformed ones are counted in ``errors`` by reason."""
    events: list[AppEvent] = []
    if rows.shape[0] == 0:
        return events
    protos = d.proto[rows].tolist()
    sports = d.sport[rows].tolist()
    dports = d.dport[rows].tolist()
    starts = d.payload_off[rows].tolist()
    ends = (d.payload_off[rows] + d.payload_len[rows]).tolist()
    tss = d.ts[rows].tolist()
    src_hi, src_lo = d.src_hi[rows].tolist(), d.src_lo[rows].tolist()
    dst_hi, dst_lo = d.dst_hi[rows].tolist(), d.dst_lo[rows].tolist()
    src_mac, dst_mac = d.src_mac[rows].tolist(), d.dst_mac[rows].tolist()
    buffer = d.data
    for i, row in enumerate(rows.tolist()):
        proto, sport, dport = protos[i], sports[i], dports[i]
        payload = buffer[starts[i] : ends[i]].tobytes()
        repeat = False
        key = None
        outcome: object = _MISS
        if cache is not None and (sport in _ANNOUNCE_PORTS or dport in _ANNOUNCE_PORTS):
            key = (src_mac[i], src_lo[i], payload)
            # The very same payload parses the same: reuse it, without touching the recency order
            # (which decides which DNS repeats are still remembered) nor the repeat flag.
            outcome = cache.get(key, _MISS)
        elif cache is not None and proto == 17 and (sport in _DNS_PORTS or dport in _DNS_PORTS):
            key = (src_mac[i], src_lo[i], payload[2:])
            outcome = cache.get(key, _MISS)
            if outcome is not _MISS:
                cache.move_to_end(key)
                repeat = True
        if outcome is _MISS:
            try:
                outcome = parse_app(proto, sport, dport, payload)
            except MalformedPayload as exc:
                outcome = exc
            if key is not None and cache is not None:
                cache[key] = outcome
                if len(cache) > _CACHE_SIZE:
                    cache.popitem(last=False)
        if isinstance(outcome, MalformedPayload):
            errors[_reason(outcome)] += 1
            continue
        if outcome is None:
            continue
        message: AppResult = outcome  # type: ignore[assignment]
        events.append(
            AppEvent(
                row=row,
                ts=tss[i],
                proto=proto,
                src_hi=src_hi[i],
                src_lo=src_lo[i],
                dst_hi=dst_hi[i],
                dst_lo=dst_lo[i],
                src_mac=src_mac[i],
                dst_mac=dst_mac[i],
                sport=sport,
                dport=dport,
                message=message,
                repeat=repeat,
            )
        )
    return events


def _reason(exc: Exception) -> str:
    """A stable counter label: the message up to its first digit-bearing detail."""
    text = str(exc)
    words = []
    for word in text.split():
        if any(ch.isdigit() for ch in word):
            break
        words.append(word)
    return " ".join(words) or type(exc).__name__
