"""Choosing, for a whole decoded batch, the few payloads worth a Python parser, and parsing them.

The choice is vectorized (ports and first payload bytes); only the chosen rows cross into Python.
A payload that fails to parse is counted by reason and skipped: its packet still counts everywhere
else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from heimdal_tui.decode.app.dispatch import APP_TCP_PORTS, APP_UDP_PORTS, AppResult, parse_app
from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app.http import HTTP_METHOD_PREFIXES
from heimdal_tui.decode.headers import PROTO_TCP, PROTO_UDP, DecodedBatch

_UDP_PORTS = np.array(sorted(APP_UDP_PORTS), dtype=np.int64)
_TCP_PORTS = np.array(sorted(APP_TCP_PORTS), dtype=np.int64)
_HTTP_FIRST = np.array(sorted({p[0] for p in HTTP_METHOD_PREFIXES}), dtype=np.int64)
_TLS_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01


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


def candidate_rows(d: DecodedBatch) -> np.ndarray:
    """Rows whose payload may hold a message one of the application parsers reads."""
    has = d.payload_len > 0
    if not has.any():
        return np.zeros(0, dtype=np.int64)
    udp = has & (d.proto == PROTO_UDP)
    udp &= np.isin(d.sport, _UDP_PORTS) | np.isin(d.dport, _UDP_PORTS)
    tcp = has & (d.proto == PROTO_TCP)
    first = np.zeros(len(d), dtype=np.int64)
    sixth = np.zeros(len(d), dtype=np.int64)
    last = d.data.shape[0] - 1
    first[tcp] = d.data[np.minimum(d.payload_off[tcp], last)]
    long_enough = tcp & (d.payload_len > 5)
    sixth[long_enough] = d.data[np.minimum(d.payload_off[long_enough] + 5, last)]
    tls = long_enough & (first == _TLS_HANDSHAKE) & (sixth == _CLIENT_HELLO)
    http = tcp & np.isin(first, _HTTP_FIRST) & (d.payload_len >= 4)
    dns_tcp = tcp & (np.isin(d.sport, _TCP_PORTS) | np.isin(d.dport, _TCP_PORTS))
    return np.flatnonzero(udp | tls | http | dns_tcp)


def parse_rows(d: DecodedBatch, rows: np.ndarray, errors: Counter[str]) -> list[AppEvent]:
    """Parse the payloads of ``rows``; malformed ones are counted in ``errors`` by reason."""
    events: list[AppEvent] = []
    for row in rows.tolist():
        proto = int(d.proto[row])
        sport = int(d.sport[row])
        dport = int(d.dport[row])
        try:
            message = parse_app(proto, sport, dport, d.payload(row))
        except MalformedPayload as exc:
            errors[_reason(exc)] += 1
            continue
        if message is None:
            continue
        events.append(
            AppEvent(
                row=row,
                ts=float(d.ts[row]),
                proto=proto,
                src_hi=int(d.src_hi[row]),
                src_lo=int(d.src_lo[row]),
                dst_hi=int(d.dst_hi[row]),
                dst_lo=int(d.dst_lo[row]),
                src_mac=int(d.src_mac[row]),
                dst_mac=int(d.dst_mac[row]),
                sport=sport,
                dport=dport,
                message=message,
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
