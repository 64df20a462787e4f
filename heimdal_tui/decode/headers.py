"""Decoding the fixed headers of a whole FrameBatch at once, into numpy columns.

Per-packet Python (or scapy) dissection is far too slow for the hot path, so every header field is
read for all frames of a batch with one numpy gather: ``data[start + position]``. Each step narrows
a mask of frames whose headers are long enough and well formed; a frame that fails is counted under
a reason and dropped, never raised. Only the rare application payloads (DNS, DHCP, TLS ClientHello,
HTTP, ...) are handed, by index, to the Python parsers in :mod:`heimdal_tui.decode.app`.

Addresses are kept as two uint64 columns (``*_hi``, ``*_lo``): IPv6 big-endian, IPv4 as the
IPv4-mapped IPv6 address ``::ffff:a.b.c.d`` so one pair of columns serves both families. MAC
addresses are uint64 (0 where the link layer carries none).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from heimdal_tui.capture.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD,
    LINKTYPE_RAW_OPENBSD,
    FrameBatch,
)

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

V4_MAPPED_HI = np.uint64(0)
V4_MAPPED_LO_PREFIX = np.uint64(0x0000FFFF00000000)

# IPv6 extension headers walked to find the transport header (hop-by-hop, routing, fragment,
# destination options); at most this many are followed.
_IPV6_EXT = (0, 43, 44, 60)
_IPV6_MAX_EXT = 4

_U64 = np.uint64
# Which frames a gather reads: an index array, or all of them.
Rows = np.ndarray | slice
_ALL = slice(None)

# The columns handed on to flows, devices and detectors (see DecodedBatch.to_frame()).
PACKET_COLUMNS = (
    "ts",
    "wire_len",
    "src_mac",
    "dst_mac",
    "eth_type",
    "vlan",
    "ip_ver",
    "proto",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "ip_len",
    "ttl",
    "sport",
    "dport",
    "tcp_flags",
    "payload_wire_len",
    "arp_op",
    "arp_sha",
    "arp_spa",
    "arp_tha",
    "arp_tpa",
)


@dataclass(slots=True)
class DecodedBatch:
    """Header columns of the frames that decoded; row i came from frame ``frame[i]`` of the batch."""

    frame: np.ndarray  # int64 index into the FrameBatch
    ts: np.ndarray  # float64
    wire_len: np.ndarray  # int64, frame length on the wire
    src_mac: np.ndarray  # uint64, 0 when absent
    dst_mac: np.ndarray  # uint64, 0 when absent
    eth_type: np.ndarray  # int64 (after VLAN tags)
    vlan: np.ndarray  # int64, outer VLAN id or -1
    ip_ver: np.ndarray  # int64: 0 (not IP), 4, 6
    proto: np.ndarray  # int64 IP protocol / next header (-1 when not IP)
    src_hi: np.ndarray  # uint64
    src_lo: np.ndarray  # uint64
    dst_hi: np.ndarray  # uint64
    dst_lo: np.ndarray  # uint64
    ip_len: np.ndarray  # int64: IP datagram length from its header (0 when not IP)
    ttl: np.ndarray  # int64
    sport: np.ndarray  # int64: TCP/UDP port, ICMP type (as Zeek does); -1 when none
    dport: np.ndarray  # int64: TCP/UDP port, ICMP code; -1 when none
    tcp_flags: np.ndarray  # int64
    payload_off: np.ndarray  # int64: absolute offset of the transport payload in ``data``
    payload_len: np.ndarray  # int64: captured payload bytes
    payload_wire_len: np.ndarray  # int64: payload bytes on the wire (from IP lengths)
    arp_op: np.ndarray  # int64, 0 when not ARP
    arp_sha: np.ndarray  # uint64
    arp_spa: np.ndarray  # uint64 (IPv4 as integer)
    arp_tha: np.ndarray  # uint64
    arp_tpa: np.ndarray  # uint64
    data: np.ndarray  # the batch's buffer (uint8), for payload slices
    errors: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def columns(self) -> dict[str, np.ndarray]:
        """The header columns handed on (``PACKET_COLUMNS``), by name."""
        return {name: getattr(self, name) for name in PACKET_COLUMNS}

    def to_frame(self) -> pl.DataFrame:
        """The header columns as a polars DataFrame (zero-copy for numeric columns)."""
        return pl.DataFrame(self.columns())

    def payload(self, row: int) -> bytes:
        start = int(self.payload_off[row])
        return self.data[start : start + int(self.payload_len[row])].tobytes()


class _Reader:
    """Bounds-checked big-endian field gathers over the frames of one batch.

    Multi-byte fields are read through strided views of the buffer (element i = the bytes starting
    at byte i), so a field of many frames is a single numpy gather. ``rows`` selects the frames
    (an index array, or ``slice(None)`` for all of them): each protocol's fields are gathered for
    that protocol's frames only.
    """

    def __init__(self, batch: FrameBatch) -> None:
        data = batch.data
        if data.shape[0] < 8:
            data = np.concatenate((data, np.zeros(8, dtype=np.uint8)))
        self.data = data
        size = int(data.shape[0])
        self.start = batch.offsets
        self.end = batch.offsets + batch.caplen
        self._views = {
            width: np.ndarray(shape=(size - width + 1,), dtype=f">u{width}", buffer=data, strides=(1,))
            for width in (2, 4, 8)
        }
        self._last = {1: size - 1, 2: size - 2, 4: size - 4, 8: size - 8}

    def has(self, rel: np.ndarray | int, nbytes: np.ndarray | int, rows: Rows = _ALL) -> np.ndarray:
        """Frames (of ``rows``) whose captured bytes reach ``rel + nbytes``."""
        return self.start[rows] + rel + nbytes <= self.end[rows]

    def _index(self, rows: Rows, rel: np.ndarray | int, width: int) -> np.ndarray:
        # Frames too short for the field read clamped garbage; callers mask them out with has().
        return np.minimum(self.start[rows] + rel, self._last[width])

    def u8(self, rel: np.ndarray | int, rows: Rows = _ALL) -> np.ndarray:
        return self.data[self._index(rows, rel, 1)].astype(np.int64)

    def u16(self, rel: np.ndarray | int, rows: Rows = _ALL) -> np.ndarray:
        return self._views[2][self._index(rows, rel, 2)].astype(np.int64)

    def u32(self, rel: np.ndarray | int, rows: Rows = _ALL) -> np.ndarray:
        return self._views[4][self._index(rows, rel, 4)].astype(np.int64)

    def u64(self, rel: np.ndarray | int, rows: Rows = _ALL) -> np.ndarray:
        return self._views[8][self._index(rows, rel, 8)].astype(_U64)

    def mac(self, rel: np.ndarray | int, rows: Rows = _ALL) -> np.ndarray:
        """Six bytes at ``rel`` as uint64 (read as 8 bytes and shifted: frames are long enough)."""
        return self.u64(rel, rows) >> _U64(16)


def decode_headers(batch: FrameBatch) -> DecodedBatch:
    """Decode every frame's link, network and transport headers; see the module docstring."""
    n = len(batch)
    r = _Reader(batch)
    errors: Counter[str] = Counter()
    lt = batch.linktype
    caplen = batch.caplen

    ok = np.ones(n, dtype=bool)
    l3 = np.zeros(n, dtype=np.int64)
    eth_type = np.zeros(n, dtype=np.int64)
    vlan = np.full(n, -1, dtype=np.int64)
    src_mac = np.zeros(n, dtype=_U64)
    dst_mac = np.zeros(n, dtype=_U64)

    def fail(mask: np.ndarray, reason: str) -> None:
        bad = mask & ok
        count = int(bad.sum())
        if count:
            errors[reason] += count
            ok[bad] = False

    def fail_rows(rows: np.ndarray, reason: str) -> None:
        """fail() for frames given by index."""
        if rows.shape[0] == 0:
            return
        bad = rows[ok[rows]]
        if bad.shape[0]:
            errors[reason] += int(bad.shape[0])
            ok[bad] = False

    def narrow(rows: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
        """``rows`` (and the columns aligned with them) without the frames that have failed."""
        still = ok[rows]
        if still.all():
            return (rows, *columns)
        return (rows[still], *(c[still] for c in columns))

    # -- link layer ---------------------------------------------------------------------------
    eth = lt == LINKTYPE_ETHERNET
    if eth.any():
        fail(eth & (caplen < 14), "truncated Ethernet header")
        e = np.flatnonzero(eth & ok)
        dst_mac[e] = r.mac(0, e)
        src_mac[e] = r.mac(6, e)
        et = r.u16(12, e)
        pos = np.full(e.shape[0], 14, dtype=np.int64)
        for _ in range(2):  # 802.1Q and 802.1ad (QinQ) tags
            tagged = (et == ETH_VLAN) | (et == ETH_QINQ)
            if not tagged.any():
                break
            at = np.flatnonzero(tagged)
            fail_rows(e[at[~r.has(pos[at], 4, e[at])]], "truncated 802.1Q tag")
            at = at[ok[e[at]]]
            first = at[vlan[e[at]] < 0]
            vlan[e[first]] = r.u16(pos[first], e[first]) & 0x0FFF
            et[at] = r.u16(pos[at] + 2, e[at])
            pos[at] += 4
        eth_type[e] = et
        l3[e] = pos

    sll = lt == LINKTYPE_LINUX_SLL
    if sll.any():
        fail(sll & (caplen < 16), "truncated Linux cooked header")
        s = sll & ok
        has_mac = s & (r.u16(2) == 1) & (r.u16(4) == 6)
        src_mac[has_mac] = r.mac(6)[has_mac]
        eth_type[s] = r.u16(14)[s]
        l3[s] = 16

    sll2 = lt == LINKTYPE_LINUX_SLL2
    if sll2.any():
        fail(sll2 & (caplen < 20), "truncated Linux cooked v2 header")
        s = sll2 & ok
        has_mac = s & (r.u16(8) == 1) & (r.u8(11) == 6)
        src_mac[has_mac] = r.mac(12)[has_mac]
        eth_type[s] = r.u16(0)[s]
        l3[s] = 20

    raw = (lt == LINKTYPE_RAW) | (lt == LINKTYPE_RAW_BSD) | (lt == LINKTYPE_RAW_OPENBSD)
    raw |= (lt == LINKTYPE_IPV4) | (lt == LINKTYPE_IPV6)
    null = (lt == LINKTYPE_NULL) | (lt == LINKTYPE_LOOP)
    if null.any():
        fail(null & (caplen < 4), "truncated loopback header")
        s = null & ok
        fam_be = r.u32(0)
        fam_le = (
            ((fam_be & 0xFF) << 24) | ((fam_be & 0xFF00) << 8) | ((fam_be >> 8) & 0xFF00) | (fam_be >> 24)
        )
        fam = np.where(lt == LINKTYPE_NULL, np.minimum(fam_be, fam_le), fam_be)
        eth_type[s] = np.where(fam == 2, ETH_IPV4, np.where(np.isin(fam, (10, 24, 28, 30)), ETH_IPV6, -1))[s]
        l3[s] = 4
    if raw.any():
        s = raw & ok
        fail(s & (caplen < 1), "empty raw IP frame")
        version = r.u8(0) >> 4
        eth_type[s] = np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, -1))[s]
        l3[s] = 0

    # -- network layer ------------------------------------------------------------------------
    ip_ver = np.zeros(n, dtype=np.int64)
    proto = np.full(n, -1, dtype=np.int64)
    src_hi = np.zeros(n, dtype=_U64)
    src_lo = np.zeros(n, dtype=_U64)
    dst_hi = np.zeros(n, dtype=_U64)
    dst_lo = np.zeros(n, dtype=_U64)
    ip_len = np.zeros(n, dtype=np.int64)
    ttl = np.zeros(n, dtype=np.int64)
    l4 = np.zeros(n, dtype=np.int64)
    l3_end = np.zeros(n, dtype=np.int64)  # end of the IP datagram on the wire (excludes link padding)
    first_fragment = np.ones(n, dtype=bool)

    v4 = np.flatnonzero(ok & (eth_type == ETH_IPV4))
    if v4.shape[0]:
        at = l3[v4]
        fail_rows(v4[~r.has(at, 20, v4)], "truncated IPv4 header")
        v4, at = narrow(v4, at)
        b0 = r.u8(at, v4)
        ihl = (b0 & 0x0F) * 4
        fail_rows(v4[(b0 >> 4) != 4], "IPv4 header with wrong version")
        fail_rows(v4[ihl < 20], "IPv4 header length below 20")
        v4, at, ihl = narrow(v4, at, ihl)
        total = r.u16(at + 2, v4)
        fail_rows(v4[total < ihl], "IPv4 total length shorter than its header")
        fail_rows(v4[~r.has(at, ihl, v4)], "truncated IPv4 options")
        v4, at, ihl, total = narrow(v4, at, ihl, total)
        ip_ver[v4] = 4
        proto[v4] = r.u8(at + 9, v4)
        ttl[v4] = r.u8(at + 8, v4)
        src_lo[v4] = r.u32(at + 12, v4).astype(_U64) | V4_MAPPED_LO_PREFIX
        dst_lo[v4] = r.u32(at + 16, v4).astype(_U64) | V4_MAPPED_LO_PREFIX
        ip_len[v4] = total
        l4[v4] = at + ihl
        l3_end[v4] = at + total
        frag_off = r.u16(at + 6, v4) & 0x1FFF
        first_fragment[v4[frag_off != 0]] = False

    v6 = np.flatnonzero(ok & (eth_type == ETH_IPV6))
    if v6.shape[0]:
        at = l3[v6]
        fail_rows(v6[~r.has(at, 40, v6)], "truncated IPv6 header")
        v6, at = narrow(v6, at)
        fail_rows(v6[(r.u8(at, v6) >> 4) != 6], "IPv6 header with wrong version")
        v6, at = narrow(v6, at)
        ip_ver[v6] = 6
        plen = r.u16(at + 4, v6)
        ip_len[v6] = plen + 40
        ttl[v6] = r.u8(at + 7, v6)
        src_hi[v6] = r.u64(at + 8, v6)
        src_lo[v6] = r.u64(at + 16, v6)
        dst_hi[v6] = r.u64(at + 24, v6)
        dst_lo[v6] = r.u64(at + 32, v6)
        l3_end[v6] = at + 40 + plen
        nh = r.u8(at + 6, v6)
        pos = at + 40
        for _ in range(_IPV6_MAX_EXT):
            ext = np.flatnonzero(np.isin(nh, _IPV6_EXT) & ok[v6])
            if not ext.shape[0]:
                break
            fail_rows(v6[ext[~r.has(pos[ext], 8, v6[ext])]], "truncated IPv6 extension header")
            ext = ext[ok[v6[ext]]]
            frag = ext[nh[ext] == 44]
            first_fragment[v6[frag[(r.u16(pos[frag] + 2, v6[frag]) & 0xFFF8) != 0]]] = False
            length = np.where(nh[ext] == 44, 8, (r.u8(pos[ext] + 1, v6[ext]) + 1) * 8)
            nh[ext] = r.u8(pos[ext], v6[ext])
            pos[ext] += length
        proto[v6] = nh
        l4[v6] = pos

    # -- ARP ----------------------------------------------------------------------------------
    arp_op = np.zeros(n, dtype=np.int64)
    arp_sha = np.zeros(n, dtype=_U64)
    arp_spa = np.zeros(n, dtype=_U64)
    arp_tha = np.zeros(n, dtype=_U64)
    arp_tpa = np.zeros(n, dtype=_U64)
    arp = np.flatnonzero(ok & (eth_type == ETH_ARP))
    if arp.shape[0]:
        at = l3[arp]
        fail_rows(arp[~r.has(at, 28, arp)], "truncated ARP packet")
        arp, at = narrow(arp, at)
        ethernet_ipv4 = (r.u16(at, arp) == 1) & (r.u16(at + 2, arp) == ETH_IPV4) & (r.u8(at + 4, arp) == 6)
        ethernet_ipv4 &= r.u8(at + 5, arp) == 4
        fail_rows(arp[~ethernet_ipv4], "ARP for a hardware/protocol pair other than Ethernet/IPv4")
        arp, at = narrow(arp, at)
        arp_op[arp] = r.u16(at + 6, arp)
        arp_sha[arp] = r.mac(at + 8, arp)
        arp_spa[arp] = r.u32(at + 14, arp).astype(_U64)
        arp_tha[arp] = r.mac(at + 18, arp)
        arp_tpa[arp] = r.u32(at + 24, arp).astype(_U64)

    # -- transport layer ----------------------------------------------------------------------
    sport = np.full(n, -1, dtype=np.int64)
    dport = np.full(n, -1, dtype=np.int64)
    tcp_flags = np.zeros(n, dtype=np.int64)
    payload_off = np.zeros(n, dtype=np.int64)
    payload_end = np.zeros(n, dtype=np.int64)
    transport = ok & (ip_ver > 0) & first_fragment

    tcp = np.flatnonzero(transport & (proto == PROTO_TCP))
    if tcp.shape[0]:
        at = l4[tcp]
        fail_rows(tcp[~r.has(at, 14, tcp)], "truncated TCP header")
        tcp, at = narrow(tcp, at)
        doff = (r.u8(at + 12, tcp) >> 4) * 4
        fail_rows(tcp[doff < 20], "TCP data offset below 20")
        tcp, at, doff = narrow(tcp, at, doff)
        sport[tcp] = r.u16(at, tcp)
        dport[tcp] = r.u16(at + 2, tcp)
        tcp_flags[tcp] = r.u8(at + 13, tcp)
        payload_off[tcp] = at + doff
        payload_end[tcp] = l3_end[tcp]

    udp = np.flatnonzero(transport & (proto == PROTO_UDP) & ok)
    if udp.shape[0]:
        at = l4[udp]
        fail_rows(udp[~r.has(at, 8, udp)], "truncated UDP header")
        udp, at = narrow(udp, at)
        sport[udp] = r.u16(at, udp)
        dport[udp] = r.u16(at + 2, udp)
        payload_off[udp] = at + 8
        ulen = r.u16(at + 4, udp)
        # Trust the UDP length where it is sane (it is 0 for IPv6 jumbograms).
        end = l3_end[udp]
        payload_end[udp] = np.where((ulen >= 8) & (at + ulen <= end), at + ulen, end)

    icmp = np.flatnonzero(transport & ((proto == PROTO_ICMP) | (proto == PROTO_ICMPV6)) & ok)
    if icmp.shape[0]:
        at = l4[icmp]
        fail_rows(icmp[~r.has(at, 2, icmp)], "truncated ICMP header")
        icmp, at = narrow(icmp, at)
        sport[icmp] = r.u8(at, icmp)
        dport[icmp] = r.u8(at + 1, icmp)

    # Payload extents: on the wire from the IP/UDP lengths (a shorter IP length than the frame means
    # link-layer padding), captured as far as the snaplen allowed.
    has_payload = ok & (payload_off > 0)
    wire_payload = np.where(has_payload, np.maximum(payload_end - payload_off, 0), 0)
    captured = np.where(has_payload, np.clip(np.minimum(payload_end, caplen) - payload_off, 0, None), 0)

    columns = {
        "ts": batch.ts,
        "wire_len": batch.wirelen,
        "src_mac": src_mac,
        "dst_mac": dst_mac,
        "eth_type": eth_type,
        "vlan": vlan,
        "ip_ver": ip_ver,
        "proto": proto,
        "src_hi": src_hi,
        "src_lo": src_lo,
        "dst_hi": dst_hi,
        "dst_lo": dst_lo,
        "ip_len": ip_len,
        "ttl": ttl,
        "sport": sport,
        "dport": dport,
        "tcp_flags": tcp_flags,
        "payload_off": batch.offsets + payload_off,
        "payload_len": captured,
        "payload_wire_len": wire_payload,
        "arp_op": arp_op,
        "arp_sha": arp_sha,
        "arp_spa": arp_spa,
        "arp_tha": arp_tha,
        "arp_tpa": arp_tpa,
    }
    keep = np.flatnonzero(ok)
    if keep.shape[0] < n:  # frames that failed are dropped (usually none are)
        columns = {name: column[keep] for name, column in columns.items()}
    return DecodedBatch(frame=keep, data=batch.data, errors=errors, **columns)
