"""Byte-level frame builders: Ethernet II, ARP, IPv4, TCP, UDP, IGMPv2.

Frames are assembled with ``struct`` rather than scapy: the generator writes tens of thousands of
frames per file and scapy's per-packet build costs ~100x more. The tests dissect the output with
scapy, which keeps these builders honest.

Every builder returns ``(captured, wire_len)``. ``captured`` is what goes into the pcap record (the
whole frame, or its first ``snap`` bytes); ``wire_len`` is the frame's length on the wire. Frames
shorter than the Ethernet minimum are zero-padded to 60 bytes, as a mirror port or a bridge sees
them. A truncated frame's checksums cover the uncaptured payload as if it were zeros.
"""

from __future__ import annotations

import socket
import struct
import sys
from array import array

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_MIN = 60

PROTO_IGMP = 2
PROTO_TCP = 6
PROTO_UDP = 17

# TCP flags
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

_LITTLE = sys.byteorder == "little"

Frame = tuple[bytes, int]


def mac_bytes(mac: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` -> 6 bytes."""
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def ip_bytes(ip: str) -> bytes:
    return socket.inet_aton(ip)


def multicast_mac(ip: str) -> bytes:
    """The Ethernet group address an IPv4 multicast group maps to (01:00:5e + low 23 bits)."""
    raw = ip_bytes(ip)
    return b"\x01\x00\x5e" + bytes([raw[1] & 0x7F, raw[2], raw[3]])


def inet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of ``data`` as a network-order integer (pack it with ``!H``)."""
    if len(data) % 2:
        data += b"\x00"
    # Summing native-order words and swapping the result gives the network-order checksum (RFC 1071
    # section 2(B)); array.sum runs in C, which matters for thousands of frames.
    total = sum(array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    total = ~total & 0xFFFF
    if _LITTLE:
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def _finish(frame: bytes, wire_len: int, snap: int | None) -> Frame:
    if wire_len < ETH_MIN:
        frame = frame + b"\x00" * (ETH_MIN - wire_len)
        wire_len = ETH_MIN
    if snap is not None and len(frame) > snap:
        frame = frame[:snap]
    return frame, wire_len


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes, wire_len: int | None = None) -> Frame:
    """An Ethernet II frame; ``wire_len`` when the payload is already truncated."""
    frame = dst + src + struct.pack("!H", ethertype) + payload
    return _finish(frame, wire_len if wire_len is not None else len(frame), None)


def arp(
    eth_dst: bytes,
    eth_src: bytes,
    op: int,
    sender_mac: bytes,
    sender_ip: str,
    target_mac: bytes,
    target_ip: str,
) -> Frame:
    """ARP over Ethernet (op 1 request, 2 reply)."""
    body = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_IPV4,
        6,
        4,
        op,
        sender_mac,
        ip_bytes(sender_ip),
        target_mac,
        ip_bytes(target_ip),
    )
    return ethernet(eth_dst, eth_src, ETH_ARP, body)


def ipv4_header(
    src: bytes,
    dst: bytes,
    proto: int,
    payload_len: int,
    ident: int,
    ttl: int,
    df: bool = True,
    tos: int = 0,
    options: bytes = b"",
) -> bytes:
    ihl = 5 + len(options) // 4
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        tos,
        ihl * 4 + payload_len,
        ident & 0xFFFF,
        0x4000 if df else 0,
        ttl,
        proto,
        0,
        src,
        dst,
    )
    hdr += options
    return hdr[:10] + struct.pack("!H", inet_checksum(hdr)) + hdr[12:]


def tcp_frame(
    eth_dst: bytes,
    eth_src: bytes,
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    ident: int,
    ttl: int,
    payload: bytes = b"",
    payload_len: int | None = None,
    options: bytes = b"",
    snap: int | None = None,
    tos: int = 0,
) -> Frame:
    """A TCP segment; ``payload`` may be just the first bytes of ``payload_len`` bytes of data."""
    plen = len(payload) if payload_len is None else payload_len
    if snap is not None:
        # Keep only what will be captured; the checksum treats the rest as zeros.
        payload = payload[: max(0, snap - 54 - len(options))]
    doff = (20 + len(options)) // 4
    hdr = struct.pack(
        "!HHIIBBHHH",
        sport,
        dport,
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        doff << 4,
        flags,
        window,
        0,
        0,
    )
    hdr += options
    tcp_len = len(hdr) + plen
    pseudo = src + dst + struct.pack("!BBH", 0, PROTO_TCP, tcp_len)
    csum = inet_checksum(pseudo + hdr + payload)
    hdr = hdr[:16] + struct.pack("!H", csum) + hdr[18:]
    ip = ipv4_header(src, dst, PROTO_TCP, tcp_len, ident, ttl, tos=tos)
    frame = eth_dst + eth_src + b"\x08\x00" + ip + hdr + payload
    return _finish(frame, 14 + 20 + tcp_len, snap)


def udp_frame(
    eth_dst: bytes,
    eth_src: bytes,
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    payload: bytes,
    ident: int,
    ttl: int,
    df: bool = False,
    tos: int = 0,
    snap: int | None = None,
) -> Frame:
    udp_len = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, udp_len, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, PROTO_UDP, udp_len)
    csum = inet_checksum(pseudo + hdr + payload) or 0xFFFF
    hdr = hdr[:6] + struct.pack("!H", csum)
    ip = ipv4_header(src, dst, PROTO_UDP, udp_len, ident, ttl, df=df, tos=tos)
    frame = eth_dst + eth_src + b"\x08\x00" + ip + hdr + payload
    return _finish(frame, len(frame), snap)


# IP Router Alert option (RFC 2113), carried by IGMP messages.
ROUTER_ALERT = b"\x94\x04\x00\x00"


def igmp_frame(
    eth_dst: bytes,
    eth_src: bytes,
    src: bytes,
    dst: bytes,
    igmp_type: int,
    max_resp: int,
    group: str,
    ident: int,
) -> Frame:
    """IGMPv2 (0x11 membership query, 0x16 v2 report, 0x17 leave), TTL 1 with Router Alert."""
    body = struct.pack("!BBH4s", igmp_type, max_resp, 0, ip_bytes(group))
    body = body[:2] + struct.pack("!H", inet_checksum(body)) + body[4:]
    ip = ipv4_header(src, dst, PROTO_IGMP, len(body), ident, 1, df=False, tos=0xC0, options=ROUTER_ALERT)
    frame = eth_dst + eth_src + b"\x08\x00" + ip + body
    return _finish(frame, len(frame), None)


def tcp_options(kind: str, mss: int = 1460, wscale: int = 8, ts_val: int = 0) -> bytes:
    """SYN options as each TCP stack orders them (part of the OS fingerprint)."""
    mss_opt = struct.pack("!BBH", 2, 4, mss)
    ws = struct.pack("!BBB", 3, 3, wscale)
    sack = b"\x04\x02"
    ts = struct.pack("!BBII", 8, 10, ts_val & 0xFFFFFFFF, 0)
    if kind == "windows":
        return mss_opt + b"\x01" + ws + b"\x01\x01" + sack
    if kind == "apple":
        return mss_opt + b"\x01" + ws + b"\x01\x01" + ts + sack + b"\x00\x00"
    if kind == "linux":
        return mss_opt + sack + ts + b"\x01" + ws
    if kind == "lwip":
        return mss_opt
    if kind == "synack":
        return mss_opt + b"\x01\x01" + sack + b"\x01" + ws
    raise ValueError(f"unknown TCP option style {kind!r}")
