"""Choosing, for a whole decoded batch, the few payloads worth a Python parser, and parsing them.

The choice is vectorized (ports and first payload bytes); only the chosen rows cross into Python.
A payload that fails to parse is counted by reason and skipped: its packet still counts everywhere
else.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from heimdal_tui.decode.app.dispatch import APP_TCP_PORTS, APP_UDP_PORTS, AppResult, parse_app, udp_parser
from heimdal_tui.decode.app.dns import DnsMessage
from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app.http import HTTP_METHOD_PREFIXES
from heimdal_tui.decode.headers import PROTO_TCP, PROTO_UDP, DecodedBatch

_TLS_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01


def _member_table(size: int, members: Iterable[int]) -> np.ndarray:
    """A boolean lookup table: ``table[value]`` says whether value is a member (faster than isin)."""
    table = np.zeros(size, dtype=bool)
    table[list(members)] = True
    return table


_UDP_PORT_SET = _member_table(65536, APP_UDP_PORTS)
_TCP_PORT_SET = _member_table(65536, APP_TCP_PORTS)
_FIRST_BYTE_SET = _member_table(256, {_TLS_HANDSHAKE} | {p[0] for p in HTTP_METHOD_PREFIXES})
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
    udp = np.flatnonzero(has & (d.proto == PROTO_UDP))  # TCP and UDP rows have ports 0..65535
    chosen = udp[_UDP_PORT_SET[d.sport[udp]] | _UDP_PORT_SET[d.dport[udp]]]
    tcp = np.flatnonzero(has & (d.proto == PROTO_TCP))
    if tcp.shape[0] == 0:
        return chosen
    dns_tcp = _TCP_PORT_SET[d.sport[tcp]] | _TCP_PORT_SET[d.dport[tcp]]
    # Only payloads starting like a request or a handshake record are looked at further.
    last = d.data.shape[0] - 1
    first = d.data[np.minimum(d.payload_off[tcp], last)]
    maybe = _FIRST_BYTE_SET[first]
    picked = np.zeros(len(d), dtype=bool)
    picked[chosen] = True
    picked[tcp[dns_tcp & ~maybe]] = True
    tcp = tcp[maybe]
    # The first _HEAD payload bytes of those rows (bytes past the payload are masked by length).
    length = d.payload_len[tcp]
    head = d.data[np.minimum(d.payload_off[tcp][:, None] + np.arange(_HEAD), last)]
    tls = (length > 5) & (head[:, 0] == _TLS_HANDSHAKE) & (head[:, 1] == 3) & (head[:, 2] <= 4)
    tls &= head[:, 5] == _CLIENT_HELLO
    http = np.zeros(tcp.shape[0], dtype=bool)
    for prefix in HTTP_METHOD_PREFIXES:
        pattern = np.frombuffer(prefix, dtype=np.uint8)
        http |= (length >= pattern.shape[0]) & (head[:, : pattern.shape[0]] == pattern).all(axis=1)
    picked[tcp[tls | http | dns_tcp[maybe]]] = True
    return np.flatnonzero(picked)


Outcome = AppResult | MalformedPayload | None


class AppParser:
    """Parses chosen payloads, with a bounded cache for repeated announcements."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[int, int, bytes], Outcome] = OrderedDict()
        self._memo = ParseMemo()

    def parse_rows(self, d: DecodedBatch, rows: np.ndarray, errors: Counter[str]) -> list[AppEvent]:
        """Parse the payloads of ``rows``; malformed ones are counted in ``errors`` by reason."""
        return parse_rows(d, rows, errors, self._cache, self._memo)


class ParseMemo:
    """Parse results of UDP discovery payloads (DNS, mDNS, LLMNR, NBNS, SSDP), whoever sent them.

    A LAN asks the same few hundred names over and over, and re-announces the same services: most
    such payloads were parsed moments ago, from this or another host. A parse depends on the
    payload alone (and on the ports only through which parser they choose), and DNS and NBNS
    messages match but for their 16-bit ID in the first two bytes: those are remembered without
    it, and a DNS message recalled gets its own ID back. Bounded: the least recently used go first.

    This is only a shortcut: :func:`parse_rows` returns exactly what parsing every payload would.
    """

    SIZE = 4096
    # Parsers whose messages carry no field from the first two bytes but the DNS ID.
    _WITHOUT_ID = frozenset({"dns", "nbns"})

    def __init__(self) -> None:
        self._memo: OrderedDict[tuple[str, bytes], Outcome] = OrderedDict()

    def parse(self, proto: int, sport: int, dport: int, payload: bytes, body: bytes | None = None) -> Outcome:
        """parse_app's outcome for the payload (``body``: ``payload[2:]``, if the caller has it)."""
        parser = udp_parser(sport, dport) if proto == 17 else None
        if parser is None or parser == "dhcp" or len(payload) < 12:
            return _parse(proto, sport, dport, payload)
        if parser not in self._WITHOUT_ID:
            body = payload
        elif body is None:
            body = payload[2:]
        key = (parser, body)
        memo = self._memo
        outcome = memo.get(key, _MISS)
        if outcome is _MISS:
            outcome = _parse(proto, sport, dport, payload)
            memo[key] = outcome
            if len(memo) > self.SIZE:
                memo.popitem(last=False)
        else:
            memo.move_to_end(key)
        if type(outcome) is DnsMessage:
            ident = (payload[0] << 8) | payload[1]
            if outcome.id != ident:
                m = outcome
                outcome = DnsMessage(
                    ident,
                    m.is_response,
                    m.opcode,
                    m.rcode,
                    m.questions,
                    m.answers,
                    m.authorities,
                    m.additionals,
                )
        return outcome  # type: ignore[return-value]


def _parse(proto: int, sport: int, dport: int, payload: bytes) -> Outcome:
    try:
        return parse_app(proto, sport, dport, payload)
    except MalformedPayload as exc:
        # Kept (memoized) as the outcome: without its traceback, whose frames would hold the
        # capture chunk being parsed (16 MiB each) for as long as the memo remembers it.
        exc.__context__ = None
        return exc.with_traceback(None)


def parse_rows(
    d: DecodedBatch,
    rows: np.ndarray,
    errors: Counter[str],
    cache: OrderedDict[tuple[int, int, bytes], Outcome] | None = None,
    memo: ParseMemo | None = None,
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
    buffer = d.data.data  # the array's own memoryview: slices without copies
    parse = memo.parse if memo is not None else None
    append = events.append
    event = AppEvent
    for i, row in enumerate(rows.tolist()):
        proto, sport, dport = protos[i], sports[i], dports[i]
        payload = bytes(buffer[starts[i] : ends[i]])
        repeat = False
        key = body = None
        outcome: object = _MISS
        if cache is not None:
            if sport in _ANNOUNCE_PORTS or dport in _ANNOUNCE_PORTS:
                key = (src_mac[i], src_lo[i], payload)
                # The very same payload parses the same: reuse it, without touching the recency
                # order (which decides which DNS repeats are still remembered) nor the repeat flag.
                outcome = cache.get(key, _MISS)
            elif proto == 17 and (sport in _DNS_PORTS or dport in _DNS_PORTS):
                body = payload[2:]
                key = (src_mac[i], src_lo[i], body)
                outcome = cache.get(key, _MISS)
                if outcome is not _MISS:
                    cache.move_to_end(key)
                    repeat = True
        if outcome is _MISS:
            outcome = (
                parse(proto, sport, dport, payload, body) if parse else _parse(proto, sport, dport, payload)
            )
            if key is not None and cache is not None:
                cache[key] = outcome
                if len(cache) > _CACHE_SIZE:
                    cache.popitem(last=False)
        if outcome is None:
            continue
        if isinstance(outcome, MalformedPayload):
            errors[_reason(outcome)] += 1
            continue
        append(
            event(
                row,
                tss[i],
                proto,
                src_hi[i],
                src_lo[i],
                dst_hi[i],
                dst_lo[i],
                src_mac[i],
                dst_mac[i],
                sport,
                dport,
                outcome,  # type: ignore[arg-type]
                repeat,
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
