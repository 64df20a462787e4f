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

    def to_frame(self) -> pl.DataFrame:
        """The header columns as a polars DataFrame (zero-copy for numeric columns)."""
        return pl.DataFrame({name: getattr(self, name) for name in PACKET_COLUMNS})

    def payload(self, row: int) -> bytes:
        start = int(self.payload_off[row])
        return self.data[start : start + int(self.payload_len[row])].tobytes()


class _Reader:
    """Bounds-checked big-endian field gathers over the frames of one batch.

    Multi-byte fields are read through strided views of the buffer (element i = the bytes starting
    at byte i), so every field of every frame is a single numpy gather.
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

    def has(self, rel: np.ndarray | int, nbytes: np.ndarray | int) -> np.ndarray:
        """Frames whose captured bytes reach ``rel + nbytes``."""
        return self.start + rel + nbytes <= self.end

    def _index(self, rel: np.ndarray | int, width: int) -> np.ndarray:
        # Frames too short for the field read clamped garbage; callers mask them out with has().
        return np.minimum(self.start + rel, self._last[width])

    def u8(self, rel: np.ndarray | int) -> np.ndarray:
        return self.data[self._index(rel, 1)].astype(np.int64)

    def u16(self, rel: np.ndarray | int) -> np.ndarray:
        return self._views[2][self._index(rel, 2)].astype(np.int64)

    def u32(self, rel: np.ndarray | int) -> np.ndarray:
        return self._views[4][self._index(rel, 4)].astype(np.int64)

    def u64(self, rel: np.ndarray | int) -> np.ndarray:
        return self._views[8][self._index(rel, 8)].astype(_U64)

    def mac(self, rel: np.ndarray | int) -> np.ndarray:
        """Six bytes at ``rel`` as uint64 (read as 8 bytes and shifted: frames are long enough)."""
        return self.u64(rel) >> _U64(16)


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

    # -- link layer ---------------------------------------------------------------------------
    eth = lt == LINKTYPE_ETHERNET
    if eth.any():
        fail(eth & (caplen < 14), "truncated Ethernet header")
        e = eth & ok
        dst_mac[e] = r.mac(0)[e]
        src_mac[e] = r.mac(6)[e]
        et = r.u16(12)
        pos = np.full(n, 14, dtype=np.int64)
        for _ in range(2):  # 802.1Q and 802.1ad (QinQ) tags
            tagged = e & ((et == ETH_VLAN) | (et == ETH_QINQ))
            if not tagged.any():
                break
            fail(tagged & ~r.has(pos, 4), "truncated 802.1Q tag")
            tagged &= ok
            first = tagged & (vlan < 0)
            vlan[first] = (r.u16(pos) & 0x0FFF)[first]
            et = np.where(tagged, r.u16(pos + 2), et)
            pos = np.where(tagged, pos + 4, pos)
        eth_type[e] = et[e]
        l3[e] = pos[e]

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

    v4 = ok & (eth_type == ETH_IPV4)
    if v4.any():
        fail(v4 & ~r.has(l3, 20), "truncated IPv4 header")
        v4 &= ok
        b0 = r.u8(l3)
        ihl = (b0 & 0x0F) * 4
        fail(v4 & ((b0 >> 4) != 4), "IPv4 header with wrong version")
        fail(v4 & (ihl < 20), "IPv4 header length below 20")
        v4 &= ok
        total = r.u16(l3 + 2)
        fail(v4 & (total < ihl), "IPv4 total length shorter than its header")
        fail(v4 & ~r.has(l3, ihl), "truncated IPv4 options")
        v4 &= ok
        ip_ver[v4] = 4
        proto[v4] = r.u8(l3 + 9)[v4]
        ttl[v4] = r.u8(l3 + 8)[v4]
        src_lo[v4] = r.u32(l3 + 12).astype(_U64)[v4] | V4_MAPPED_LO_PREFIX
        dst_lo[v4] = r.u32(l3 + 16).astype(_U64)[v4] | V4_MAPPED_LO_PREFIX
        ip_len[v4] = total[v4]
        l4[v4] = (l3 + ihl)[v4]
        l3_end[v4] = (l3 + total)[v4]
        frag_off = r.u16(l3 + 6) & 0x1FFF
        first_fragment[v4 & (frag_off != 0)] = False

    v6 = ok & (eth_type == ETH_IPV6)
    if v6.any():
        fail(v6 & ~r.has(l3, 40), "truncated IPv6 header")
        v6 &= ok
        fail(v6 & ((r.u8(l3) >> 4) != 6), "IPv6 header with wrong version")
        v6 &= ok
        ip_ver[v6] = 6
        plen = r.u16(l3 + 4)
        ip_len[v6] = (plen + 40)[v6]
        ttl[v6] = r.u8(l3 + 7)[v6]
        src_hi[v6] = r.u64(l3 + 8)[v6]
        src_lo[v6] = r.u64(l3 + 16)[v6]
        dst_hi[v6] = r.u64(l3 + 24)[v6]
        dst_lo[v6] = r.u64(l3 + 32)[v6]
        l3_end[v6] = (l3 + 40 + plen)[v6]
        nh = r.u8(l3 + 6)
        pos = l3 + 40
        for _ in range(_IPV6_MAX_EXT):
            ext = v6 & np.isin(nh, _IPV6_EXT)
            if not ext.any():
                break
            fail(ext & ~r.has(pos, 8), "truncated IPv6 extension header")
            ext &= ok
            frag = ext & (nh == 44)
            first_fragment[frag & ((r.u16(pos + 2) & 0xFFF8) != 0)] = False
            length = np.where(frag, 8, (r.u8(pos + 1) + 1) * 8)
            nh = np.where(ext, r.u8(pos), nh)
            pos = np.where(ext, pos + length, pos)
        proto[v6] = nh[v6]
        l4[v6] = pos[v6]

    is_ip = ok & (ip_ver > 0)

    # -- ARP ----------------------------------------------------------------------------------
    arp = ok & (eth_type == ETH_ARP)
    arp_op = np.zeros(n, dtype=np.int64)
    arp_sha = np.zeros(n, dtype=_U64)
    arp_spa = np.zeros(n, dtype=_U64)
    arp_tha = np.zeros(n, dtype=_U64)
    arp_tpa = np.zeros(n, dtype=_U64)
    if arp.any():
        fail(arp & ~r.has(l3, 28), "truncated ARP packet")
        arp &= ok
        ethernet_ipv4 = (r.u16(l3) == 1) & (r.u16(l3 + 2) == ETH_IPV4) & (r.u8(l3 + 4) == 6)
        ethernet_ipv4 &= r.u8(l3 + 5) == 4
        fail(arp & ~ethernet_ipv4, "ARP for a hardware/protocol pair other than Ethernet/IPv4")
        arp &= ok
        arp_op[arp] = r.u16(l3 + 6)[arp]
        arp_sha[arp] = r.mac(l3 + 8)[arp]
        arp_spa[arp] = r.u32(l3 + 14).astype(_U64)[arp]
        arp_tha[arp] = r.mac(l3 + 18)[arp]
        arp_tpa[arp] = r.u32(l3 + 24).astype(_U64)[arp]

    # -- transport layer ----------------------------------------------------------------------
    sport = np.full(n, -1, dtype=np.int64)
    dport = np.full(n, -1, dtype=np.int64)
    tcp_flags = np.zeros(n, dtype=np.int64)
    payload_off = np.zeros(n, dtype=np.int64)
    payload_end = np.zeros(n, dtype=np.int64)
    transport = is_ip & first_fragment & ok

    tcp = transport & (proto == PROTO_TCP)
    if tcp.any():
        fail(tcp & ~r.has(l4, 14), "truncated TCP header")
        tcp &= ok
        doff = (r.u8(l4 + 12) >> 4) * 4
        fail(tcp & (doff < 20), "TCP data offset below 20")
        tcp &= ok
        sport[tcp] = r.u16(l4)[tcp]
        dport[tcp] = r.u16(l4 + 2)[tcp]
        tcp_flags[tcp] = r.u8(l4 + 13)[tcp]
        payload_off[tcp] = (l4 + doff)[tcp]
        payload_end[tcp] = l3_end[tcp]

    udp = transport & (proto == PROTO_UDP)
    if udp.any():
        fail(udp & ~r.has(l4, 8), "truncated UDP header")
        udp &= ok
        sport[udp] = r.u16(l4)[udp]
        dport[udp] = r.u16(l4 + 2)[udp]
        payload_off[udp] = (l4 + 8)[udp]
        ulen = r.u16(l4 + 4)
        # Trust the UDP length where it is sane (it is 0 for IPv6 jumbograms).
        udp_end = np.where((ulen >= 8) & (l4 + ulen <= l3_end), l4 + ulen, l3_end)
        payload_end[udp] = udp_end[udp]

    icmp = transport & ((proto == PROTO_ICMP) | (proto == PROTO_ICMPV6))
    if icmp.any():
        fail(icmp & ~r.has(l4, 2), "truncated ICMP header")
        icmp &= ok
        sport[icmp] = r.u8(l4)[icmp]
        dport[icmp] = r.u8(l4 + 1)[icmp]

    # Payload extents: on the wire from the IP/UDP lengths (a shorter IP length than the frame means
    # link-layer padding), captured as far as the snaplen allowed.
    has_payload = ok & (payload_off > 0)
    wire_payload = np.where(has_payload, np.maximum(payload_end - payload_off, 0), 0)
    captured = np.where(has_payload, np.clip(np.minimum(payload_end, caplen) - payload_off, 0, None), 0)

    keep = np.flatnonzero(ok)
    return DecodedBatch(
        frame=keep,
        ts=batch.ts[keep],
        wire_len=batch.wirelen[keep],
        src_mac=src_mac[keep],
        dst_mac=dst_mac[keep],
        eth_type=eth_type[keep],
        vlan=vlan[keep],
        ip_ver=ip_ver[keep],
        proto=proto[keep],
        src_hi=src_hi[keep],
        src_lo=src_lo[keep],
        dst_hi=dst_hi[keep],
        dst_lo=dst_lo[keep],
        ip_len=ip_len[keep],
        ttl=ttl[keep],
        sport=sport[keep],
        dport=dport[keep],
        tcp_flags=tcp_flags[keep],
        payload_off=(batch.offsets + payload_off)[keep],
        payload_len=captured[keep],
        payload_wire_len=wire_payload[keep],
        arp_op=arp_op[keep],
        arp_sha=arp_sha[keep],
        arp_spa=arp_spa[keep],
        arp_tha=arp_tha[keep],
        arp_tpa=arp_tpa[keep],
        data=batch.data,
        errors=errors,
    )
