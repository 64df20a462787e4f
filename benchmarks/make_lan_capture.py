#!/usr/bin/env python3
"""Write a large, realistic busy-LAN capture (classic pcap, Ethernet) for benchmarking.

    python3 benchmarks/make_lan_capture.py --out benchmarks/out/lan_1m.pcap            # 1M packets
    python3 benchmarks/make_lan_capture.py --packets 3000000 --out benchmarks/out/lan_3m.pcap

What is in it (the summary printed at the end gives the exact shares):

* ``--devices`` local hosts (default 1000) in 192.168.0.0/16 behind one router (192.168.0.1, a
  Ubiquiti MAC). Each has a distinct unicast MAC: most with real vendor OUIs (Apple, Samsung-free
  Android makers, Intel, Espressif, Raspberry Pi, Sonos, Hikvision, ...), a share of phones with
  randomized, locally administered MACs. About 40% also have a global IPv6 address and all that do
  have an EUI-64 link-local one.
* TCP connections to a few thousand remote peers (443 TLS, 80 HTTP, 22 SSH, 8883 MQTT-over-TLS from
  the IoT devices, long-lived), each with a three-way handshake, requests, full-size response
  segments (1514 bytes on the wire with the TCP timestamp option), ACKs every second segment and a
  FIN (or RST) close. TLS connections open with a real ClientHello carrying SNI; HTTP ones with a GET
  carrying Host and User-Agent. About 5% of the web connections run over IPv6.
* DNS queries to the router and its answers (real, name-compressed DNS messages; the answers hold the
  very addresses the device then connects to), about 2% of the packets.
* QUIC (UDP 443), NTP, DHCP renewals (with the hostname option), mDNS announcements and queries over
  IPv4 and IPv6, SSDP, NBNS and LLMNR broadcasts, ARP, ICMP echo from a monitoring host, IPv6
  router advertisements and neighbour discovery.
* LAN-internal traffic: SMB bulk copies to two NAS boxes, HTTP to speakers/printers, and the pings.

Timestamps increase monotonically over simulated time at about ``--pps`` packets per second on
average (280 by default: 1M packets span about an hour), bursty as real traffic is. Output is
deterministic for a given ``--seed`` and arguments.

Frames are written with all their bytes (a 1M-packet capture is about 600 MB); ``--snaplen`` truncates
the captured bytes the way ``tcpdump -s`` does, keeping the original wire length in each record.

Speed: application payloads (DNS, mDNS, DHCP, NTP, NBNS, ClientHello, ...) are built once, with scapy
or by hand, as templates; the per-packet work is a single ``struct.pack`` of the Ethernet/IP/TCP or UDP
headers plus a slice of a random payload blob, buffered and written in large chunks.

Checksums: the IPv4 header checksum is correct (computed arithmetically from the header fields).
TCP and UDP checksums are left 0 (for UDP over IPv4 that means "no checksum"): neither heimdal-tui nor
tshark (by default) verifies them. ICMP, ICMPv6 and ARP payloads are built by scapy and are correct.
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import os
import random
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

# -- constants --------------------------------------------------------------------------------------

CAPTURE_START = 1_710_234_000.0  # 2024-03-12 09:00:00 UTC
LINKTYPE_ETHERNET = 1
MIN_FRAME = 60  # Ethernet minimum without FCS: shorter frames carry padding, as a switch port mirror shows

ETH_IPV4, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MSS_PAYLOAD_V4 = 1448  # 1460 MSS less the 12-byte timestamp option: 1514-byte frames
MSS_PAYLOAD_V6 = 1428

_ETH = struct.Struct("!6s6sH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
# TCP with NOP, NOP, Timestamps (32 bytes) and the SYN variant with MSS, SACK-permitted, Timestamps,
# NOP, Window scale (40 bytes), as Linux sends them.
_TCP_TS = struct.Struct("!HHIIBBHHHBBBBII")
_TCP_SYN = struct.Struct("!HHIIBBHHHBBHBBBBIIBBBB")
_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")

# Real IEEE OUIs (checked against the registry), with the kind of device that usually carries them.
VENDOR_OUIS: list[tuple[str, str, int]] = [
    # (OUI, device kind, relative weight)
    ("3C:22:FB", "phone", 6),
    ("F0:18:98", "laptop", 4),
    ("A4:83:E7", "phone", 6),
    ("AC:BC:32", "laptop", 3),
    ("8C:85:90", "phone", 4),
    ("A8:66:7F", "tablet", 2),
    ("28:6C:07", "phone", 3),  # Xiaomi
    ("64:90:C1", "phone", 2),
    ("40:4E:36", "phone", 1),  # HTC
    ("28:C6:3F", "laptop", 5),  # Intel
    ("3C:A9:F4", "laptop", 4),
    ("A0:36:9F", "workstation", 2),
    ("34:2E:B7", "laptop", 3),
    ("18:DB:F2", "workstation", 3),  # Dell
    ("54:BF:64", "workstation", 2),
    ("E8:6A:64", "laptop", 2),  # LCFC (Lenovo)
    ("8C:16:45", "laptop", 2),
    ("F8:B4:6A", "laptop", 2),  # HP
    ("E0:D5:5E", "workstation", 1),  # Gigabyte
    ("40:B0:76", "workstation", 1),  # ASUS
    ("24:0A:C4", "iot", 5),  # Espressif
    ("30:AE:A4", "iot", 4),
    ("84:F3:EB", "iot", 4),
    ("5C:CF:7F", "iot", 3),
    ("00:17:88", "iot", 2),  # Philips Hue bridge
    ("EC:B5:FA", "iot", 2),
    ("18:B4:30", "iot", 2),  # Nest
    ("68:54:FD", "speaker", 2),  # Amazon Echo
    ("FC:A1:83", "speaker", 2),
    ("74:C2:46", "speaker", 1),
    ("94:9F:3E", "speaker", 2),  # Sonos
    ("48:A6:B8", "speaker", 2),
    ("78:28:CA", "speaker", 1),
    ("F4:F5:D8", "tv", 3),  # Google (Chromecast)
    ("44:07:0B", "tv", 2),
    ("04:5D:4B", "tv", 2),  # Sony
    ("98:B6:E9", "console", 1),  # Nintendo
    ("7C:BB:8A", "console", 1),
    ("BC:AD:28", "camera", 2),  # Hikvision
    ("C0:56:E3", "camera", 2),
    ("00:80:77", "printer", 1),  # Brother
    ("30:05:5C", "printer", 1),
    ("3C:2A:F4", "printer", 1),
    ("DC:A6:32", "server", 2),  # Raspberry Pi
    ("B8:27:EB", "server", 1),
    ("E4:5F:01", "server", 1),
    ("10:27:F5", "iot", 2),  # TP-Link smart plugs
    ("60:A4:B7", "iot", 2),
]
ROUTER_MAC = bytes.fromhex("7483c2a1b2c3")  # Ubiquiti
NAS_OUI = "00:11:32"  # Synology
RANDOMIZED_PHONE_SHARE = 0.35

# Activity (relative number of internet connections a device opens) per kind.
KIND_ACTIVITY = {
    "phone": 3.0,
    "tablet": 2.0,
    "laptop": 5.0,
    "workstation": 6.0,
    "tv": 4.0,
    "console": 2.0,
    "speaker": 1.0,
    "iot": 0.15,
    "camera": 0.5,
    "printer": 0.05,
    "server": 1.5,
    "nas": 1.0,
}
IPV6_KINDS = {"phone", "tablet", "laptop", "workstation", "tv", "console"}
MDNS_KINDS = {"phone", "tablet", "laptop", "tv", "speaker", "printer", "nas"}
SSDP_KINDS = {"tv", "speaker", "console", "nas", "camera"}
NETBIOS_KINDS = {"laptop", "workstation"}

# Remote services by provider: IPv4 /16s (or /12s) and IPv6 /32s they really announce.
PROVIDERS: dict[str, tuple[list[str], list[str]]] = {
    "google": (["142.250.0.0/15", "172.217.0.0/16", "216.58.192.0/19"], ["2a00:1450::/32"]),
    "cloudflare": (["104.16.0.0/13", "172.64.0.0/13"], ["2606:4700::/32"]),
    "akamai": (["23.32.0.0/11", "184.24.0.0/13"], ["2a02:26f0::/29"]),
    "aws": (["52.0.0.0/11", "54.144.0.0/12", "3.208.0.0/12"], ["2600:1f18::/32"]),
    "azure": (["20.33.0.0/16", "40.64.0.0/10", "13.64.0.0/11"], ["2603:1000::/24"]),
    "meta": (["157.240.0.0/16", "31.13.24.0/21"], ["2a03:2880::/32"]),
    "apple": (["17.0.0.0/8"], ["2620:149::/32"]),
    "fastly": (["151.101.0.0/16", "199.232.0.0/16"], ["2a04:4e42::/32"]),
    "misc": (["5.0.0.0/8", "46.0.0.0/8", "81.0.0.0/8", "185.0.0.0/8", "91.0.0.0/8"], ["2a01::/16"]),
}
DOMAINS: list[tuple[str, str]] = [
    ("www.google.com", "google"),
    ("clients4.google.com", "google"),
    ("mail.google.com", "google"),
    ("www.youtube.com", "google"),
    ("i.ytimg.com", "google"),
    ("rr3---sn-4g5e6nsz.googlevideo.com", "google"),
    ("fonts.gstatic.com", "google"),
    ("play.googleapis.com", "google"),
    ("connectivitycheck.gstatic.com", "google"),
    ("www.gstatic.com", "google"),
    ("update.googleapis.com", "google"),
    ("firebaseinstallations.googleapis.com", "google"),
    ("www.cloudflare.com", "cloudflare"),
    ("cdnjs.cloudflare.com", "cloudflare"),
    ("discord.com", "cloudflare"),
    ("cdn.discordapp.com", "cloudflare"),
    ("www.reddit.com", "fastly"),
    ("www.nytimes.com", "fastly"),
    ("github.githubassets.com", "fastly"),
    ("pypi.org", "fastly"),
    ("files.pythonhosted.org", "fastly"),
    ("www.bbc.co.uk", "fastly"),
    ("www.apple.com", "akamai"),
    ("swcdn.apple.com", "akamai"),
    ("gsp-ssl.ls.apple.com", "apple"),
    ("gateway.icloud.com", "apple"),
    ("api-glb-euc1b.smoot.apple.com", "apple"),
    ("push.apple.com", "apple"),
    ("mesu.apple.com", "akamai"),
    ("time.apple.com", "apple"),
    ("www.microsoft.com", "akamai"),
    ("login.microsoftonline.com", "azure"),
    ("outlook.office365.com", "azure"),
    ("teams.microsoft.com", "azure"),
    ("settings-win.data.microsoft.com", "azure"),
    ("v10.events.data.microsoft.com", "azure"),
    ("graph.microsoft.com", "azure"),
    ("onedrive.live.com", "azure"),
    ("www.bing.com", "azure"),
    ("dl.delivery.mp.microsoft.com", "akamai"),
    ("www.amazon.com", "aws"),
    ("device-metrics-us.amazon.com", "aws"),
    ("avs-alexa-4-na.amazon.com", "aws"),
    ("s3.amazonaws.com", "aws"),
    ("api.spotify.com", "google"),
    ("audio-ak-spotify-com.akamaized.net", "akamai"),
    ("www.netflix.com", "aws"),
    ("ipv4-c001-lhr001-ix.1.oca.nflxvideo.net", "misc"),
    ("www.facebook.com", "meta"),
    ("graph.facebook.com", "meta"),
    ("scontent.xx.fbcdn.net", "meta"),
    ("www.instagram.com", "meta"),
    ("web.whatsapp.com", "meta"),
    ("mmg.whatsapp.net", "meta"),
    ("api.github.com", "azure"),
    ("github.com", "azure"),
    ("slack.com", "aws"),
    ("wss-primary.slack.com", "aws"),
    ("zoom.us", "aws"),
    ("api.openweathermap.org", "misc"),
    ("a2.tuyaeu.com", "aws"),
    ("mqtt.tuyaeu.com", "aws"),
    ("iot.espressif.cn", "misc"),
    ("firmware.meethue.com", "aws"),
    ("ws.meethue.com", "aws"),
    ("home.nest.com", "google"),
    ("hikvision-p2p.com", "misc"),
    ("sonos.com", "aws"),
    ("ws.sonos.com", "aws"),
    ("ecs.nintendo.net", "aws"),
    ("ctest.cdn.nintendo.net", "akamai"),
    ("deb.debian.org", "fastly"),
    ("archive.ubuntu.com", "misc"),
    ("security.ubuntu.com", "misc"),
    ("www.wikipedia.org", "misc"),
    ("upload.wikimedia.org", "misc"),
    ("www.linkedin.com", "azure"),
    ("static.licdn.com", "akamai"),
    ("www.dropbox.com", "aws"),
    ("api.twitter.com", "misc"),
    ("pbs.twimg.com", "fastly"),
    ("ocsp.digicert.com", "akamai"),
    ("r3.o.lencr.org", "akamai"),
    ("detectportal.firefox.com", "google"),
    ("incoming.telemetry.mozilla.org", "google"),
    ("api.weather.com", "akamai"),
    ("ntp.ubuntu.com", "misc"),
    ("speedtest.net", "misc"),
    ("www.booking.com", "aws"),
    ("docs.python.org", "fastly"),
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Debian APT-HTTP/1.3 (2.6.1)",
    "Microsoft-CryptoAPI/10.0",
    "okhttp/4.12.0",
    "Roku/DVP-12.5 (12.5.0.4178)",
]
NAMES = ["anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas", "kim", "lea"]

# -- small helpers ----------------------------------------------------------------------------------


def _sum16(raw: bytes) -> int:
    """Sum of the big-endian 16-bit words of an address (for the IPv4 header checksum)."""
    return sum(struct.unpack(f"!{len(raw) // 2}H", raw))


def _fold(total: int) -> int:
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _random_address(rng: random.Random, cidr: str) -> bytes:
    net = ipaddress.ip_network(cidr)
    host = rng.randrange(1, net.num_addresses - 1)
    return (net.network_address + host).packed


def _eui64_link_local(mac: bytes) -> bytes:
    iid = bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return b"\xfe\x80" + bytes(6) + iid


def _multicast_mac_v4(addr: bytes) -> bytes:
    return b"\x01\x00\x5e" + bytes([addr[1] & 0x7F]) + addr[2:4]


def _multicast_mac_v6(addr: bytes) -> bytes:
    return b"\x33\x33" + addr[12:16]


class Host:
    """An endpoint: a local device, the router, or a remote peer."""

    __slots__ = (
        "activity",
        "hostname",
        "ip4",
        "ip4_sum",
        "ip6",
        "kind",
        "ll6",
        "mac",
        "mdns",
        "peers",
        "ttl",
    )

    def __init__(self, mac: bytes, ip4: bytes, kind: str, hostname: str = "") -> None:
        self.mac = mac
        self.ip4 = ip4
        self.ip4_sum = _sum16(ip4)
        self.ip6: bytes | None = None
        self.ll6 = _eui64_link_local(mac)
        self.kind = kind
        self.hostname = hostname
        self.activity = 1.0
        self.peers: list[int] = []
        self.mdns: bytes | None = None
        self.ttl = 64


class Remote:
    __slots__ = ("domain", "ip4", "ip4_sum", "ip6", "ttl")

    def __init__(self, domain: str, ip4: bytes, ip6: bytes, ttl: int) -> None:
        self.domain = domain
        self.ip4 = ip4
        self.ip4_sum = _sum16(ip4)
        self.ip6 = ip6
        self.ttl = ttl


# -- frame builders ---------------------------------------------------------------------------------


def udp_frame(
    src_mac: bytes,
    dst_mac: bytes,
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    payload_len: int,
    ttl: int = 64,
    ipid: int = 0,
    payload: bytes | None = None,
) -> bytes:
    """Ethernet + IPv4/IPv6 (by address length) + UDP headers for a payload of ``payload_len`` bytes.

    The UDP checksum is 0 ("none") over IPv4; over IPv6, where it is mandatory, it is computed when
    the payload is given.
    """
    ulen = 8 + payload_len
    if len(src) == 4:
        total = 20 + ulen
        csum = _fold(0x4500 + total + ipid + (ttl << 8 | 17) + _sum16(src) + _sum16(dst))
        return (
            _ETH.pack(dst_mac, src_mac, ETH_IPV4)
            + _IP4.pack(0x45, 0, total, ipid, 0, ttl, 17, csum, src, dst)
            + _UDP.pack(sport, dport, ulen, 0)
        )
    csum = 0
    if payload is not None:
        data = src + dst + struct.pack("!II", ulen, 17) + _UDP.pack(sport, dport, ulen, 0) + payload
        csum = _fold(_sum16(data + b"\0" * (len(data) % 2))) or 0xFFFF
    return (
        _ETH.pack(dst_mac, src_mac, ETH_IPV6)
        + _IP6.pack(0x60000000, ulen, 17, ttl, src, dst)
        + _UDP.pack(sport, dport, ulen, csum)
    )


class TcpConn:
    """One TCP connection's header state; ``seg`` builds the next segment's headers in one direction.

    Direction 0 is client to server, 1 server to client. Sequence numbers advance with the payload
    and SYN/FIN; the ACK field acknowledges everything the other side has sent so far.
    """

    __slots__ = ("addrs", "eth", "ipid", "seq", "sums", "tcp_ports", "ts_off", "ttl", "v6", "win")

    def __init__(
        self,
        rng: random.Random,
        client_mac: bytes,
        server_mac: bytes,
        client: bytes,
        server: bytes,
        sport: int,
        dport: int,
        server_ttl: int,
    ) -> None:
        self.v6 = len(client) == 16
        etype = ETH_IPV6 if self.v6 else ETH_IPV4
        self.eth = (_ETH.pack(server_mac, client_mac, etype), _ETH.pack(client_mac, server_mac, etype))
        self.addrs = ((client, server), (server, client))
        self.sums = (0, 0) if self.v6 else (_sum16(client) + _sum16(server),) * 2
        self.tcp_ports = ((sport, dport), (dport, sport))
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.ipid = [rng.getrandbits(16), rng.getrandbits(16)]
        self.ts_off = (rng.getrandbits(31), rng.getrandbits(31))
        self.ttl = (64, server_ttl)
        self.win = (rng.choice((501, 502, 2048, 4096)), rng.choice((235, 501, 1024, 8192)))

    def seg(self, d: int, flags: int, plen: int, now: float) -> bytes:
        seq = self.seq[d]
        ack = self.seq[1 - d] if flags & TCP_ACK else 0
        self.seq[d] = (seq + plen + (1 if flags & (TCP_SYN | TCP_FIN) else 0)) & 0xFFFFFFFF
        sport, dport = self.tcp_ports[d]
        ms = int(now * 1000)
        tsval = (ms + self.ts_off[d]) & 0xFFFFFFFF
        tsecr = (ms - 1 + self.ts_off[1 - d]) & 0xFFFFFFFF
        if flags & TCP_SYN:
            tsecr = tsecr if flags & TCP_ACK else 0
            tcp = _TCP_SYN.pack(
                sport,
                dport,
                seq,
                ack,
                0xA0,
                flags,
                64240 if d == 0 else 65160,
                0,
                0,
                2,
                4,
                1460 if not self.v6 else 1440,
                4,
                2,
                8,
                10,
                tsval,
                tsecr,
                1,
                3,
                3,
                7,
            )
        else:
            tcp = _TCP_TS.pack(
                sport, dport, seq, ack, 0x80, flags, self.win[d], 0, 0, 1, 1, 8, 10, tsval, tsecr
            )
        src, dst = self.addrs[d]
        tlen = len(tcp) + plen
        if self.v6:
            ip = _IP6.pack(0x60000000, tlen, 6, self.ttl[d], src, dst)
        else:
            ipid = self.ipid[d]
            self.ipid[d] = (ipid + 1) & 0xFFFF
            total = 20 + tlen
            ttl = self.ttl[d]
            csum = _fold(0x4500 + total + ipid + 0x4000 + (ttl << 8 | 6) + self.sums[d])
            ip = _IP4.pack(0x45, 0, total, ipid, 0x4000, ttl, 6, csum, src, dst)
        return self.eth[d] + ip + tcp


def client_hello(rng: random.Random, sni: str) -> bytes:
    """A TLS 1.3 ClientHello record as a modern browser sends it (SNI, groups, ALPN, key share)."""

    def ext(kind: int, body: bytes) -> bytes:
        return struct.pack("!HH", kind, len(body)) + body

    name = sni.encode()
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    groups = bytes.fromhex("0008001d001700180019")
    sigalgs = bytes.fromhex("001004030804040105030805050108060601")
    alpn_list = b"\x02h2\x08http/1.1"
    alpn = struct.pack("!H", len(alpn_list)) + alpn_list
    versions = bytes.fromhex("0403040303")
    key_share = struct.pack("!HHH", 36, 0x001D, 32) + rng.randbytes(32)
    exts = b"".join(
        (
            ext(0x0000, server_name),
            ext(0x0017, b""),
            ext(0xFF01, b"\x00"),
            ext(0x000A, groups),
            ext(0x000B, b"\x01\x00"),
            ext(0x0023, b""),
            ext(0x0010, alpn),
            ext(0x0005, b"\x01\x00\x00\x00\x00"),
            ext(0x000D, sigalgs),
            ext(0x0033, key_share),
            ext(0x002D, b"\x01\x01"),
            ext(0x002B, versions),
        )
    )
    pad = max(0, 512 - len(exts) - 120)  # browsers pad the hello to about 512 bytes
    exts += ext(0x0015, bytes(pad))
    suites = bytes.fromhex("1301130213031301c02bc02fc02cc030cca9cca8c013c014009c009d002f0035")
    body = (
        b"\x03\x03"
        + rng.randbytes(32)
        + b"\x20"
        + rng.randbytes(32)
        + struct.pack("!H", len(suites))
        + suites
        + b"\x01\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


_HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n"
    b"Cache-Control: max-age=86400\r\nServer: nginx\r\n\r\n"
)


def http_get(host: str, path: str, agent: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nAccept: */*\r\n"
        "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


# -- the simulation ---------------------------------------------------------------------------------

Item = tuple[float, bytes | None, bytes | memoryview | None]
Gen = Iterator[Item]


class Lan:
    """Devices, router, remote peers and the payload templates, built once from the seed."""

    def __init__(self, rng: random.Random, n_devices: int) -> None:
        from scapy.all import (  # scapy's import is slow: only here, where it is needed
            ARP,
            BOOTP,
            DHCP,
            DNS,
            DNSQR,
            DNSRR,
            DNSRRSRV,
            ICMP,
            IP,
            NTP,
            Ether,
            ICMPv6ND_NA,
            ICMPv6ND_NS,
            ICMPv6ND_RA,
            ICMPv6NDOptPrefixInfo,
            ICMPv6NDOptSrcLLAddr,
            IPv6,
            NBNSHeader,
            NBNSQueryRequest,
        )

        self.rng = rng
        self.router = Host(ROUTER_MAC, bytes([192, 168, 0, 1]), "router", "gateway")
        self.router.ll6 = _eui64_link_local(ROUTER_MAC)
        self.v6_prefix = bytes.fromhex("2a0280715a801200")  # the ISP-delegated /64 of this LAN
        self.devices: list[Host] = []
        kinds_w = [w for _, _, w in VENDOR_OUIS]
        used_macs = {ROUTER_MAC}
        for i in range(n_devices):
            if i < 2:
                oui, kind = NAS_OUI, "nas"
            else:
                oui, kind, _ = rng.choices(VENDOR_OUIS, weights=kinds_w)[0]
            while True:
                if kind == "phone" and rng.random() < RANDOMIZED_PHONE_SHARE:
                    first = (rng.getrandbits(8) & 0xFC) | 0x02  # locally administered, unicast
                    mac = bytes([first]) + rng.randbytes(5)
                else:
                    mac = bytes.fromhex(oui.replace(":", "")) + rng.randbytes(3)
                if mac not in used_macs:
                    used_macs.add(mac)
                    break
            ip4 = bytes([192, 168, 1 + i // 240, 10 + i % 240])
            dev = Host(mac, ip4, kind, self._hostname(kind, mac, i))
            dev.activity = KIND_ACTIVITY[kind] * rng.lognormvariate(0, 0.8)
            if kind in IPV6_KINDS and rng.random() < 0.6:
                dev.ip6 = self.v6_prefix + rng.randbytes(8)
            dev.ttl = 128 if kind in ("workstation",) or (kind == "laptop" and oui[:2] != "F0") else 64
            self.devices.append(dev)
        self.nas = self.devices[:2]
        self.monitor = next((d for d in self.devices if d.kind == "server"), self.devices[-1])
        self.printers = [d for d in self.devices if d.kind == "printer"] or self.devices[:1]
        self.speakers = [d for d in self.devices if d.kind in ("speaker", "tv")] or self.devices[:1]
        self.active = [d for d in self.devices if d.kind not in ("iot", "camera", "printer")]
        self.active_w = [d.activity for d in self.active]
        self.iot = [d for d in self.devices if d.kind in ("iot", "camera")]

        # Remote peers: every domain resolves to 1-4 addresses of its provider; a long tail of
        # peers without a name (p2p, cached lookups, games) comes on top.
        self.remotes: list[Remote] = []
        self.domain_peers: dict[str, list[int]] = {}
        for domain, provider in DOMAINS:
            v4nets, v6nets = PROVIDERS[provider]
            ids = []
            for _ in range(rng.randint(1, 4)):
                ids.append(len(self.remotes))
                self.remotes.append(
                    Remote(
                        domain,
                        _random_address(rng, rng.choice(v4nets)),
                        _random_address(rng, rng.choice(v6nets)),
                        rng.choice((52, 54, 56, 57, 58, 116, 119, 121)),
                    )
                )
            self.domain_peers[domain] = ids
        self.named_remotes = len(self.remotes)
        tail_nets = [net for v4, _ in PROVIDERS.values() for net in v4]
        for _ in range(6000):
            provider = rng.choice(list(PROVIDERS))
            v4nets, v6nets = PROVIDERS[provider]
            self.remotes.append(
                Remote(
                    rng.choice(DOMAINS)[0],
                    _random_address(rng, rng.choice(tail_nets)),
                    _random_address(rng, rng.choice(v6nets)),
                    rng.choice((45, 50, 53, 55, 110, 115)),
                )
            )
        # Zipf-like domain popularity.
        self.domain_w = [1.0 / (rank + 1) ** 0.9 for rank in range(len(DOMAINS))]
        self.domain_cum = _cumulative(self.domain_w)
        self.active_cum = _cumulative(self.active_w)
        self.ntp_servers = [
            Remote("pool.ntp.org", _random_address(rng, "162.159.200.0/24"), bytes(16), 57) for _ in range(4)
        ]

        # DNS templates (id 0, patched per query): A and AAAA question and answer per domain.
        self.dns_query: dict[tuple[str, int], bytes] = {}
        self.dns_answer: dict[tuple[str, int], bytes] = {}
        for domain, _ in DOMAINS:
            peers = [self.remotes[j] for j in self.domain_peers[domain]]
            for qtype in (1, 28):
                q = DNSQR(qname=domain, qtype=qtype)
                self.dns_query[domain, qtype] = bytes(DNS(id=0, rd=1, qd=[q]))
                answers = []
                name = domain
                if rng.random() < 0.4:
                    cname = (
                        f"{domain.split('.')[0]}.edge-{rng.randrange(1, 99)}.cdn-{domain.split('.')[-2]}.net"
                    )
                    answers.append(DNSRR(rrname=domain, type="CNAME", ttl=300, rdata=cname))
                    name = cname
                for p in peers:
                    if qtype == 1:
                        answers.append(
                            DNSRR(rrname=name, type="A", ttl=rng.choice((60, 300)), rdata=_ip_text(p.ip4))
                        )
                    else:
                        answers.append(
                            DNSRR(rrname=name, type="AAAA", ttl=300, rdata=str(ipaddress.IPv6Address(p.ip6)))
                        )
                msg = DNS(id=0, qr=1, rd=1, ra=1, qd=[q], an=answers)
                self.dns_answer[domain, qtype] = bytes(msg.compress())
        self.domains = [d for d, _ in DOMAINS]

        # NTP client request and server reply (48 bytes each).
        # (timestamps fixed, not scapy's default of the wall clock, to keep the output deterministic)
        t0 = CAPTURE_START + 2_208_988_800  # NTP era 0
        self.ntp_req = bytes(NTP(version=4, mode=3, ref=0, orig=0, recv=0, sent=t0))
        self.ntp_resp = bytes(
            NTP(version=4, mode=4, stratum=3, poll=10, precision=-25, ref=t0 - 60, orig=t0, recv=t0, sent=t0)
        )

        # mDNS announcements: each announcing device has its own records (PTR, SRV, TXT, A).
        services = {
            "phone": "_companion-link._tcp.local",
            "tablet": "_companion-link._tcp.local",
            "laptop": "_device-info._tcp.local",
            "tv": "_googlecast._tcp.local",
            "speaker": "_sonos._tcp.local",
            "printer": "_ipp._tcp.local",
            "nas": "_smb._tcp.local",
        }
        for dev in self.devices:
            if dev.kind not in MDNS_KINDS:
                continue
            service = services[dev.kind]
            inst = f"{dev.hostname}.{service}"
            host = f"{dev.hostname}.local"
            msg = DNS(
                id=0,
                qr=1,
                aa=1,
                an=[
                    DNSRR(rrname=service, type="PTR", ttl=4500, rdata=inst),
                    DNSRRSRV(
                        rrname=inst, ttl=120, port=rng.choice((7000, 8009, 1400, 631, 445)), target=host
                    ),
                    DNSRR(rrname=inst, type="TXT", ttl=4500, rdata=[b"rpBA=1", f"md={dev.kind}".encode()]),
                    DNSRR(rrname=host, type="A", ttl=120, rdata=_ip_text(dev.ip4)),
                ],
            )
            dev.mdns = bytes(msg.compress())
        self.mdns_queries = [
            bytes(DNS(id=0, qd=[DNSQR(qname=s, qtype="PTR")]))
            for s in (
                "_googlecast._tcp.local",
                "_airplay._tcp.local",
                "_raop._tcp.local",
                "_spotify-connect._tcp.local",
            )
        ]
        self.llmnr_queries = [
            bytes(DNS(id=0, qd=[DNSQR(qname=n, qtype="A")])) for n in ("wpad", "nas", "printer")
        ]
        self.nbns_queries = [
            bytes(NBNSHeader(NAME_TRN_ID=0, NM_FLAGS="B+RD") / NBNSQueryRequest(QUESTION_NAME=n))
            for n in ("WPAD", "NAS", "WORKGROUP")
        ]
        self.ssdp_search = (
            b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n'
            b"ST: urn:dial-multiscreen-org:service:dial:1\r\nUSER-AGENT: Google Chrome/122.0 Windows\r\n\r\n"
        )
        self.ssdp_notify: dict[int, bytes] = {}
        for idx, dev in enumerate(self.devices):
            if dev.kind in SSDP_KINDS:
                ip = ".".join(map(str, dev.ip4))
                self.ssdp_notify[idx] = (
                    f"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n"
                    f"LOCATION: http://{ip}:1400/xml/device_description.xml\r\nNT: upnp:rootdevice\r\n"
                    f"NTS: ssdp:alive\r\nSERVER: Linux UPnP/1.0 {dev.hostname}/1.0\r\n"
                    f"USN: uuid:{dev.mac.hex()}-0000-0000-0000-000000000000::upnp:rootdevice\r\n\r\n"
                ).encode()

        # DHCP renewal (unicast request with hostname, option 12) and the router's ACK, per device.
        self.dhcp_req: list[bytes] = []
        self.dhcp_ack: list[bytes] = []
        r_ip = ".".join(map(str, self.router.ip4))
        for dev in self.devices:
            ip = ".".join(map(str, dev.ip4))
            self.dhcp_req.append(
                bytes(
                    BOOTP(op=1, xid=0, ciaddr=ip, chaddr=dev.mac + bytes(10))
                    / DHCP(
                        options=[
                            ("message-type", "request"),
                            ("client_id", b"\x01" + dev.mac),
                            ("hostname", dev.hostname.encode()),
                            ("param_req_list", [1, 3, 6, 15, 26, 28, 51, 58, 59, 43]),
                            "end",
                        ]
                    )
                )
            )
            self.dhcp_ack.append(
                bytes(
                    BOOTP(op=2, xid=0, ciaddr=ip, yiaddr=ip, siaddr=r_ip, chaddr=dev.mac + bytes(10))
                    / DHCP(
                        options=[
                            ("message-type", "ack"),
                            ("server_id", r_ip),
                            ("lease_time", 3600),
                            ("subnet_mask", "255.255.0.0"),
                            ("router", r_ip),
                            ("name_server", r_ip),
                            ("domain", b"lan"),
                            "end",
                        ]
                    )
                )
            )

        # Whole frames built by scapy (ARP, ICMP echo, NDP), per device.
        r_mac = ":".join(f"{b:02x}" for b in ROUTER_MAC)
        self.arp_who: list[bytes] = []
        self.arp_reply: list[bytes] = []
        self.ping: list[tuple[bytes, bytes]] = []
        self.ndp: dict[int, tuple[bytes, bytes]] = {}
        mon = self.monitor
        mon_mac = ":".join(f"{b:02x}" for b in mon.mac)
        mon_ip = ".".join(map(str, mon.ip4))
        for idx, dev in enumerate(self.devices):
            mac_s = ":".join(f"{b:02x}" for b in dev.mac)
            ip = ".".join(map(str, dev.ip4))
            self.arp_who.append(
                _pad(
                    bytes(
                        Ether(dst="ff:ff:ff:ff:ff:ff", src=r_mac) / ARP(op=1, hwsrc=r_mac, psrc=r_ip, pdst=ip)
                    )
                )
            )
            self.arp_reply.append(
                _pad(
                    bytes(
                        Ether(dst=r_mac, src=mac_s) / ARP(op=2, hwsrc=mac_s, psrc=ip, hwdst=r_mac, pdst=r_ip)
                    )
                )
            )
            payload = b"abcdefghijklmnopqrstuvwabcdefghi"
            self.ping.append(
                (
                    bytes(
                        Ether(dst=mac_s, src=mon_mac) / IP(src=mon_ip, dst=ip) / ICMP(id=idx, seq=1) / payload
                    ),
                    bytes(
                        Ether(dst=mon_mac, src=mac_s)
                        / IP(src=ip, dst=mon_ip, ttl=dev.ttl)
                        / ICMP(type=0, id=idx, seq=1)
                        / payload
                    ),
                )
            )
            if dev.ip6 is not None:
                g6 = str(ipaddress.IPv6Address(dev.ip6))
                ll = str(ipaddress.IPv6Address(dev.ll6))
                rll = str(ipaddress.IPv6Address(self.router.ll6))
                sn = ipaddress.IPv6Address("ff02::1:ff00:0") + int.from_bytes(dev.ip6[13:16], "big")
                self.ndp[idx] = (
                    bytes(
                        Ether(dst=_mac_text(_multicast_mac_v6(sn.packed)), src=r_mac)
                        / IPv6(src=rll, dst=str(sn), hlim=255)
                        / ICMPv6ND_NS(tgt=g6)
                        / ICMPv6NDOptSrcLLAddr(lladdr=r_mac)
                    ),
                    bytes(
                        Ether(dst=r_mac, src=mac_s)
                        / IPv6(src=ll, dst=rll, hlim=255)
                        / ICMPv6ND_NA(tgt=g6, R=0, S=1, O=1)
                    ),
                )
        self.router_adv = bytes(
            Ether(dst="33:33:00:00:00:01", src=r_mac)
            / IPv6(src=str(ipaddress.IPv6Address(self.router.ll6)), dst="ff02::1", hlim=255)
            / ICMPv6ND_RA(routerlifetime=1800)
            / ICMPv6NDOptSrcLLAddr(lladdr=r_mac)
            / ICMPv6NDOptPrefixInfo(prefix="2a02:8071:5a80:1200::", prefixlen=64)
        )
        # Payload blobs: TLS application data records (16 KiB each, as servers send them), and
        # plain random bytes (SSH, SMB, QUIC). Segments are slices at random offsets.
        records = []
        for _ in range(16):
            body = rng.randbytes(16384 + 17)
            records.append(b"\x17\x03\x03" + struct.pack("!H", len(body)) + body)
        self.tls_blob = memoryview(b"".join(records))
        self.raw_blob = memoryview(rng.randbytes(1 << 18))

    def _hostname(self, kind: str, mac: bytes, i: int) -> str:
        rng = self.rng
        name = rng.choice(NAMES)
        tail = mac[3:].hex().upper()
        return {
            "phone": rng.choice(
                [f"iPhone-{name}", f"Galaxy-S23-{name}", f"Pixel-8-{name}", f"Redmi-Note-{i}"]
            ),
            "tablet": f"iPad-{name}",
            "laptop": rng.choice([f"{name}s-MacBook-Pro", f"LAPTOP-{tail}{i:03d}", f"{name}-thinkpad"]),
            "workstation": f"DESKTOP-{tail}{i:03d}",
            "iot": rng.choice([f"ESP_{tail}", f"tasmota-{tail[-4:]}-{i}", f"Philips-hue-{i}", f"Nest-{i}"]),
            "speaker": rng.choice([f"Sonos-{tail}", f"Echo-Dot-{i}", f"Kitchen-Speaker-{i}"]),
            "tv": rng.choice([f"Chromecast-{i}", f"BRAVIA-{i}", f"Living-Room-TV-{i}"]),
            "console": f"Nintendo-Switch-{i}",
            "camera": f"HIK-CAM-{tail}",
            "printer": f"BRN{mac.hex().upper()}",
            "server": f"raspberrypi-{i}",
            "nas": f"synology-nas-{i}",
        }[kind]


def _ip_text(addr: bytes) -> str:
    return str(ipaddress.ip_address(addr))


def _mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def _pad(frame: bytes) -> bytes:
    return frame + bytes(MIN_FRAME - len(frame)) if len(frame) < MIN_FRAME else frame


def _cumulative(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


class Sim:
    """Event loop: a heap of generators, each yielding (delay to its next packet, headers, payload)."""

    def __init__(self, lan: Lan, rng: random.Random, pps: float) -> None:
        self.lan = lan
        self.rng = rng
        self.pps = pps
        self.now = 0.0
        self.heap: list[tuple[float, int, Gen]] = []
        self.counter = 0
        self.kinds: Counter[str] = Counter()  # packets per traffic category, for the summary
        self.tls_hellos = 0
        self.sessions: Counter[str] = Counter()  # sessions started per kind

    def spawn(self, at: float, gen: Gen) -> None:
        self.counter += 1
        heapq.heappush(self.heap, (at, self.counter, gen))

    # -- DNS --------------------------------------------------------------------------------------
    def dns_lookup(self, dev: Host, domain: str, qtypes: tuple[int, ...]) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        r = lan.router
        for qtype in qtypes:
            qid = rng.getrandbits(16).to_bytes(2, "big")
            sport = rng.randrange(32768, 61000)
            query = qid + lan.dns_query[domain, qtype][2:]
            answer = qid + lan.dns_answer[domain, qtype][2:]
            self.kinds["dns"] += 2
            yield (
                rng.uniform(0.002, 0.030),
                udp_frame(
                    dev.mac, r.mac, dev.ip4, r.ip4, sport, 53, len(query), dev.ttl, rng.getrandbits(16)
                ),
                query,
            )
            yield (
                rng.uniform(0.0001, 0.002),
                udp_frame(r.mac, dev.mac, r.ip4, dev.ip4, 53, sport, len(answer), 64, rng.getrandbits(16)),
                answer,
            )

    # -- internet TCP -------------------------------------------------------------------------------
    def web_session(self) -> Iterator[Item]:
        """A device resolves a name (often) and opens a TCP connection to one of its addresses."""
        lan, rng = self.lan, self.rng
        dev = rng.choices(lan.active, cum_weights=lan.active_cum)[0]
        r = rng.random()
        if r < 0.80:
            dport, proto = 443, "https"
        elif r < 0.90:
            dport, proto = 80, "http"
        elif r < 0.92:
            dport, proto = 22, "ssh"
        else:
            dport, proto = 443, "https"
        if rng.random() < 0.85:
            domain = rng.choices(lan.domains, cum_weights=lan.domain_cum)[0]
            remote = lan.remotes[rng.choice(lan.domain_peers[domain])]
            v6 = dev.ip6 is not None and rng.random() < 0.15
            if rng.random() < 0.5:  # cache miss: look the name up first
                yield from self.dns_lookup(dev, domain, (1, 28) if dev.ip6 is not None else (1,))
        else:
            remote = lan.remotes[rng.randrange(lan.named_remotes, len(lan.remotes))]
            domain = remote.domain
            v6 = False
        if proto == "ssh":
            remote = lan.remotes[rng.randrange(lan.named_remotes, len(lan.remotes))]
        if v6 and dev.ip6 is not None:
            conn = TcpConn(
                rng, dev.mac, ROUTER_MAC, dev.ip6, remote.ip6, rng.randrange(32768, 61000), dport, remote.ttl
            )
        else:
            conn = TcpConn(
                rng, dev.mac, ROUTER_MAC, dev.ip4, remote.ip4, rng.randrange(32768, 61000), dport, remote.ttl
            )
        tag = ("v6-" if v6 else "") + proto
        rtt = rng.uniform(0.008, 0.120)
        if proto == "https":
            hello = client_hello(rng, domain)
            self.tls_hellos += 1
            yield from self.tcp_flow(conn, rtt, tag, hello, lan.tls_blob, exchanges=_exchanges(rng))
        elif proto == "http":
            path = rng.choice(
                ("/", "/index.html", "/generate_204", "/ubuntu/dists/jammy/InRelease", "/pki/crl.crl")
            )
            request = http_get(domain, path, rng.choice(USER_AGENTS))
            yield from self.tcp_flow(
                conn, rtt, tag, request, lan.raw_blob, exchanges=_exchanges(rng), http=True
            )
        else:
            yield from self.tcp_flow(
                conn, rtt, tag, None, lan.raw_blob, exchanges=rng.randint(10, 100), small=True
            )

    def tcp_flow(
        self,
        conn: TcpConn,
        rtt: float,
        tag: str,
        first: bytes | None,
        blob: memoryview,
        exchanges: int,
        http: bool = False,
        small: bool = False,
        upload: bool = False,
        bulk: bool = False,
    ) -> Iterator[Item]:
        """Handshake, ``exchanges`` request/response rounds, and a FIN (or RST) close."""
        rng, kinds = self.rng, self.kinds
        mss = MSS_PAYLOAD_V6 if conn.v6 else MSS_PAYLOAD_V4
        blen = len(blob) - mss
        seg = conn.seg
        n = 0
        yield (rtt, seg(0, TCP_SYN, 0, self.now), None)
        yield (rng.uniform(0.0002, 0.002), seg(1, TCP_SYN | TCP_ACK, 0, self.now), None)
        yield (rng.uniform(0.00005, 0.001), seg(0, TCP_ACK, 0, self.now), None)
        n += 3
        if first is not None:
            yield (rtt, seg(0, TCP_PSH | TCP_ACK, len(first), self.now), first)
            n += 1
        for k in range(exchanges):
            if small:  # interactive: a keystroke, its echo, an ACK
                ln = rng.choice((36, 36, 36, 52, 68, 100, 212))
                off = rng.randrange(blen)
                yield (rtt, seg(0, TCP_PSH | TCP_ACK, ln, self.now), blob[off : off + ln])
                off = rng.randrange(blen)
                yield (0.0004, seg(1, TCP_PSH | TCP_ACK, ln, self.now), blob[off : off + ln])
                yield (rng.expovariate(1 / 0.8), seg(0, TCP_ACK, 0, self.now), None)
                n += 3
                continue
            if http and k > 0 and first is not None:  # the next request on a kept-alive connection
                yield (rtt, seg(0, TCP_PSH | TCP_ACK, len(first), self.now), first)
                n += 1
            elif k > 0 or first is None:  # a request
                ln = rng.randrange(60, 900)
                off = rng.randrange(blen)
                yield (rtt, seg(0, TCP_PSH | TCP_ACK, ln, self.now), blob[off : off + ln])
                n += 1
            # the response: full-size segments in a burst, a partial one last, an ACK every second one
            segments = rng.randint(40, 700) if bulk else _response_segments(rng)
            last = min(rng.randrange(40, mss), rng.randrange(40, mss))
            sender, receiver = (0, 1) if upload else (1, 0)
            gap = rng.uniform(0.00012, 0.0012)
            if http:  # the response header, with the length of the body that follows
                head = _HTTP_RESPONSE % ((segments - 1) * mss + last)
                yield (rtt, seg(1, TCP_PSH | TCP_ACK, len(head), self.now), head)
                n += 1
            for i in range(segments):
                ln = mss if i < segments - 1 else last
                off = rng.randrange(blen)
                flags = TCP_ACK if i < segments - 1 else TCP_PSH | TCP_ACK
                yield (gap, seg(sender, flags, ln, self.now), blob[off : off + ln])
                n += 1
                if i % 2 == 1 or i == segments - 1:
                    yield (gap / 2, seg(receiver, TCP_ACK, 0, self.now), None)
                    n += 1
            # think time before the next request
            yield (rng.expovariate(1 / 2.0), None, None)
        if rng.random() < 0.9:
            yield (rtt / 2, seg(0, TCP_FIN | TCP_ACK, 0, self.now), None)
            yield (rng.uniform(0.0002, 0.003), seg(1, TCP_FIN | TCP_ACK, 0, self.now), None)
            yield (0.0, seg(0, TCP_ACK, 0, self.now), None)
            n += 3
        else:
            yield (0.0, seg(rng.randrange(2), TCP_RST | TCP_ACK, 0, self.now), None)
            n += 1
        kinds[tag] += n

    def mqtt_session(self, dev: Host) -> Iterator[Item]:
        """An IoT device's long-lived MQTT-over-TLS connection: hello, then small publishes/pings."""
        lan, rng = self.lan, self.rng
        domain = rng.choice(
            ("mqtt.tuyaeu.com", "a2.tuyaeu.com", "ws.meethue.com", "home.nest.com", "hikvision-p2p.com")
        )
        yield from self.dns_lookup(dev, domain, (1,))
        remote = lan.remotes[lan.domain_peers[domain][0]]
        conn = TcpConn(
            rng, dev.mac, ROUTER_MAC, dev.ip4, remote.ip4, rng.randrange(32768, 61000), 8883, remote.ttl
        )
        seg, rtt, blob = conn.seg, rng.uniform(0.02, 0.15), lan.tls_blob
        yield (rtt, seg(0, TCP_SYN, 0, self.now), None)
        yield (0.0005, seg(1, TCP_SYN | TCP_ACK, 0, self.now), None)
        yield (0.0002, seg(0, TCP_ACK, 0, self.now), None)
        hello = client_hello(rng, domain)
        self.tls_hellos += 1
        yield (rtt, seg(0, TCP_PSH | TCP_ACK, len(hello), self.now), hello)
        off = rng.randrange(len(blob) - 4000)
        yield (0.001, seg(1, TCP_PSH | TCP_ACK, 2900, self.now), blob[off : off + 2900])
        yield (rtt, seg(0, TCP_ACK, 0, self.now), None)
        self.kinds["mqtt"] += 6
        period = rng.choice((30.0, 60.0, 120.0))
        while True:
            ln = rng.choice((31, 31, 64, 120, 250))
            off = rng.randrange(len(blob) - 300)
            yield (rtt, seg(0, TCP_PSH | TCP_ACK, ln, self.now), blob[off : off + ln])
            off = rng.randrange(len(blob) - 300)
            yield (0.0005, seg(1, TCP_PSH | TCP_ACK, 31, self.now), blob[off : off + 31])
            yield (period * rng.uniform(0.9, 1.1), seg(0, TCP_ACK, 0, self.now), None)
            self.kinds["mqtt"] += 3

    def quic_session(self) -> Iterator[Item]:
        """A QUIC (UDP 443) download to a Google/Cloudflare/Meta address."""
        lan, rng = self.lan, self.rng
        dev = rng.choices(lan.active, cum_weights=lan.active_cum)[0]
        domain = rng.choice(
            (
                "www.youtube.com",
                "rr3---sn-4g5e6nsz.googlevideo.com",
                "www.google.com",
                "www.facebook.com",
                "scontent.xx.fbcdn.net",
                "discord.com",
            )
        )
        remote = lan.remotes[rng.choice(lan.domain_peers[domain])]
        sport = rng.randrange(32768, 61000)
        blob, blen = lan.raw_blob, len(lan.raw_blob) - 1400
        r = lan.router
        ccid, scid = rng.randbytes(8), rng.randbytes(8)
        # Client Initial: long header, version 1, DCID, SCID, no token, 2-byte length, then protected
        # bytes (random); later packets: short header with the peer's connection ID.
        initial = (
            b"\xc3\x00\x00\x00\x01\x08"
            + rng.randbytes(8)
            + b"\x08"
            + ccid
            + b"\x00"
            + struct.pack("!H", 0x4000 | 1226)
        )
        to_client = b"\x40" + ccid
        to_server = b"\x40" + scid
        n = 1
        off = rng.randrange(blen)
        yield (
            0.03,
            udp_frame(dev.mac, r.mac, dev.ip4, remote.ip4, sport, 443, 1250, dev.ttl) + initial,
            blob[off : off + 1250 - len(initial)],
        )
        for _ in range(rng.randint(10, 400)):
            ln = rng.choice((1350, 1350, 1350, 1252, 800))
            off = rng.randrange(blen)
            yield (
                rng.uniform(0.0002, 0.004),
                udp_frame(r.mac, dev.mac, remote.ip4, dev.ip4, 443, sport, ln, remote.ttl) + to_client,
                blob[off : off + ln - 9],
            )
            n += 1
            if rng.random() < 0.25:
                off = rng.randrange(blen)
                yield (
                    0.0001,
                    udp_frame(dev.mac, r.mac, dev.ip4, remote.ip4, sport, 443, 40, dev.ttl) + to_server,
                    blob[off : off + 31],
                )
                n += 1
        self.kinds["quic"] += n

    # -- LAN-internal -----------------------------------------------------------------------------
    def smb_copy(self) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        dev = rng.choices(lan.active, cum_weights=lan.active_cum)[0]
        nas = rng.choice(lan.nas)
        conn = TcpConn(rng, dev.mac, nas.mac, dev.ip4, nas.ip4, rng.randrange(49152, 65535), 445, 64)
        yield from self.tcp_flow(
            conn,
            0.0004,
            "lan-smb",
            None,
            lan.raw_blob,
            exchanges=rng.randint(1, 8),
            upload=rng.random() < 0.5,
            bulk=True,
        )

    def lan_http(self) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        dev = rng.choices(lan.active, cum_weights=lan.active_cum)[0]
        target = rng.choice(lan.speakers + lan.printers)
        port = 1400 if target.kind == "speaker" else (631 if target.kind == "printer" else 8008)
        host = ".".join(map(str, target.ip4)) + f":{port}"
        conn = TcpConn(rng, dev.mac, target.mac, dev.ip4, target.ip4, rng.randrange(49152, 65535), port, 64)
        request = http_get(host, "/xml/device_description.xml", rng.choice(USER_AGENTS))
        yield from self.tcp_flow(conn, 0.0006, "lan-http", request, lan.raw_blob, exchanges=1, http=True)

    # -- periodic background per device -------------------------------------------------------------
    def ntp_loop(self, dev: Host) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        period = rng.choice((64.0, 1024.0, 1024.0, 2048.0)) if dev.kind != "iot" else 3600.0
        server = rng.choice(lan.ntp_servers)
        r = lan.router
        while True:
            sport = 123 if dev.kind in ("server", "nas") else rng.randrange(32768, 61000)
            yield (0.02, udp_frame(dev.mac, r.mac, dev.ip4, server.ip4, sport, 123, 48, dev.ttl), lan.ntp_req)
            yield (
                period * rng.uniform(0.95, 1.05),
                udp_frame(r.mac, dev.mac, server.ip4, dev.ip4, 123, sport, 48, 57),
                lan.ntp_resp,
            )
            self.kinds["ntp"] += 2

    def dns_loop(self, dev: Host) -> Iterator[Item]:
        """Background lookups (connectivity checks, push, telemetry, time) every few minutes."""
        lan, rng = self.lan, self.rng
        period = 3600.0 if dev.kind in ("iot", "camera", "printer") else 1200.0
        while True:
            domain = rng.choices(lan.domains, cum_weights=lan.domain_cum)[0]
            yield from self.dns_lookup(dev, domain, (1, 28) if dev.ip6 is not None else (1,))
            yield (period * rng.uniform(0.5, 1.5), None, None)

    def dhcp_loop(self, idx: int, dev: Host) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        r = lan.router
        while True:
            xid = rng.getrandbits(32).to_bytes(4, "big")
            req = lan.dhcp_req[idx]
            ack = lan.dhcp_ack[idx]
            req = req[:4] + xid + req[8:]
            ack = ack[:4] + xid + ack[8:]
            yield (0.003, udp_frame(dev.mac, r.mac, dev.ip4, r.ip4, 68, 67, len(req), dev.ttl), req)
            yield (
                1800.0 * rng.uniform(0.98, 1.02),
                udp_frame(r.mac, dev.mac, r.ip4, dev.ip4, 67, 68, len(ack)),
                ack,
            )
            self.kinds["dhcp"] += 2

    def arp_loop(self, idx: int) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        while True:
            yield (rng.uniform(0.0005, 0.004), lan.arp_who[idx], None)
            yield (rng.uniform(600, 1500), lan.arp_reply[idx], None)
            self.kinds["arp"] += 2

    def ping_loop(self, idx: int) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        request, reply = lan.ping[idx]
        while True:
            yield (rng.uniform(0.0003, 0.003), request, None)
            yield (600.0, reply, None)
            self.kinds["icmp"] += 2

    def mdns_loop(self, dev: Host) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        group4, group6 = bytes([224, 0, 0, 251]), bytes.fromhex("ff0200000000000000000000000000fb")
        while True:
            payload = (
                dev.mdns if dev.mdns is not None and rng.random() < 0.6 else rng.choice(lan.mdns_queries)
            )
            yield (
                0.001,
                udp_frame(dev.mac, _multicast_mac_v4(group4), dev.ip4, group4, 5353, 5353, len(payload), 255),
                payload,
            )
            yield (
                rng.uniform(120, 600),
                udp_frame(
                    dev.mac,
                    _multicast_mac_v6(group6),
                    dev.ll6,
                    group6,
                    5353,
                    5353,
                    len(payload),
                    255,
                    payload=payload,
                ),
                payload,
            )
            self.kinds["mdns"] += 1
            self.kinds["v6-mdns"] += 1

    def ssdp_loop(self, idx: int, dev: Host) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        group = bytes([239, 255, 255, 250])
        gmac = _multicast_mac_v4(group)
        notify = lan.ssdp_notify.get(idx)
        while True:
            payload = notify if notify is not None and rng.random() < 0.7 else lan.ssdp_search
            sport = 1900 if payload is notify else rng.randrange(49152, 65535)
            frame = udp_frame(dev.mac, gmac, dev.ip4, group, sport, 1900, len(payload), 4)
            yield (0.0002, frame, payload)
            yield (rng.uniform(120, 600), frame, payload)  # sent twice, as UPnP stacks do
            self.kinds["ssdp"] += 2

    def netbios_loop(self, dev: Host) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        bcast = bytes([192, 168, 255, 255])
        llmnr = bytes([224, 0, 0, 252])
        while True:
            q = rng.choice(lan.nbns_queries)
            q = rng.getrandbits(16).to_bytes(2, "big") + q[2:]
            yield (0.5, udp_frame(dev.mac, b"\xff" * 6, dev.ip4, bcast, 137, 137, len(q), 128), q)
            q = rng.choice(lan.llmnr_queries)
            q = rng.getrandbits(16).to_bytes(2, "big") + q[2:]
            sport = rng.randrange(49152, 65535)
            yield (
                rng.uniform(300, 900),
                udp_frame(dev.mac, _multicast_mac_v4(llmnr), dev.ip4, llmnr, sport, 5355, len(q), 1),
                q,
            )
            self.kinds["netbios"] += 1
            self.kinds["llmnr"] += 1

    def ndp_loop(self, idx: int) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        ns, na = lan.ndp[idx]
        while True:
            yield (rng.uniform(0.0002, 0.002), ns, None)
            yield (rng.uniform(300, 900), na, None)
            self.kinds["v6-ndp"] += 2

    def router_loop(self) -> Iterator[Item]:
        lan, rng = self.lan, self.rng
        while True:
            yield (rng.uniform(180, 600), lan.router_adv, None)
            self.kinds["v6-ndp"] += 1

    def arrivals(self, make: Callable[[], Gen], rate: float) -> Iterator[Item]:
        """Poisson arrivals of new sessions at ``rate`` per second."""
        rng = self.rng
        while True:
            self.spawn(self.now, make())
            self.sessions[make.__name__] += 1
            yield (rng.expovariate(rate), None, None)

    def start(self) -> None:
        lan, rng = self.lan, self.rng
        # Background: each device's periodic chatter starts at a random point of its period.
        for idx, dev in enumerate(lan.devices):
            self.spawn(rng.uniform(0, 1024), self.ntp_loop(dev))
            self.spawn(rng.uniform(0, 1800), self.dhcp_loop(idx, dev))
            self.spawn(rng.uniform(0, 300), self.dns_loop(dev))
            self.spawn(rng.uniform(0, 1500), self.arp_loop(idx))
            self.spawn(rng.uniform(0, 600), self.ping_loop(idx))
            if dev.kind in MDNS_KINDS:
                self.spawn(rng.uniform(0, 300), self.mdns_loop(dev))
            if dev.kind in SSDP_KINDS:
                self.spawn(rng.uniform(0, 600), self.ssdp_loop(idx, dev))
            if dev.kind in NETBIOS_KINDS:
                self.spawn(rng.uniform(0, 900), self.netbios_loop(dev))
            if idx in lan.ndp:
                self.spawn(rng.uniform(0, 900), self.ndp_loop(idx))
            if dev.kind in ("iot", "camera") and rng.random() < 0.8:
                self.spawn(rng.uniform(0, 120), self.mqtt_session(dev))
        self.spawn(rng.uniform(0, 60), self.router_loop())
        # Sessions: the background above is ~33 pps with 1000 devices; the rest of --pps comes from
        # these (mean packets per session, measured: web 62, QUIC 250, SMB copy 2400, LAN HTTP 20).
        scale = len(lan.devices) / 1000
        background = 33.0 * scale
        budget = max(self.pps - background, self.pps * 0.2)
        self.spawn(0.0, self.arrivals(self.web_session, budget * 0.87 / 52))
        self.spawn(0.0, self.arrivals(self.quic_session, budget * 0.05 / 250))
        self.spawn(0.0, self.arrivals(self.smb_copy, budget * 0.04 / 2400))
        self.spawn(0.0, self.arrivals(self.lan_http, budget * 0.04 / 20))


def _exchanges(rng: random.Random) -> int:
    r = rng.random()
    return 1 if r < 0.5 else (rng.randint(2, 5) if r < 0.9 else rng.randint(6, 30))


def _response_segments(rng: random.Random) -> int:
    """Segments in one response: mostly a single partial one (API calls), a heavy tail of downloads."""
    r = rng.random()
    if r < 0.60:
        return 1
    if r < 0.88:
        return rng.randint(2, 6)
    if r < 0.985:
        return rng.randint(7, 40)
    return rng.randint(41, 300)


# -- main -------------------------------------------------------------------------------------------


def generate(out: str, packets: int, devices: int, seed: int, snaplen: int, pps: float) -> dict[str, Any]:
    started = time.perf_counter()
    rng = random.Random(seed)
    lan = Lan(rng, devices)
    built = time.perf_counter()
    sim = Sim(lan, rng, pps)
    sim.start()
    heap = sim.heap
    pop, push = heapq.heappop, heapq.heappush
    record = _RECORD.pack
    chunks: list[bytes | memoryview] = []
    emitted = 0
    wire_total = 0
    cap_total = 0
    tmp = out + ".part"
    with open(tmp, "wb") as f:
        f.write(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen or 262144, LINKTYPE_ETHERNET))
        while emitted < packets:
            t, _, gen = pop(heap)
            sim.now = t
            item = next(gen, None)
            if item is None:
                continue
            delay, headers, payload = item
            if headers is not None:
                wire = len(headers) + (len(payload) if payload is not None else 0)
                frame: bytes | memoryview | None = None
                if wire < MIN_FRAME:
                    frame = _pad(headers + bytes(payload or b""))
                    wire = len(frame)
                cap = wire if not snaplen or wire <= snaplen else snaplen
                ts = CAPTURE_START + t
                sec = int(ts)
                chunks.append(record(sec, int((ts - sec) * 1_000_000), cap, wire))
                if cap < wire:
                    chunks.append((frame or headers + bytes(payload or b""))[:cap])
                elif frame is not None:
                    chunks.append(frame)
                else:
                    chunks.append(headers)
                    if payload is not None:
                        chunks.append(payload)
                emitted += 1
                wire_total += wire
                cap_total += cap
                if len(chunks) >= 60_000:
                    f.write(b"".join(chunks))
                    chunks.clear()
            sim.counter += 1
            push(heap, (t + delay, sim.counter, gen))
        f.write(b"".join(chunks))
    os.replace(tmp, out)
    elapsed = time.perf_counter() - started
    return {
        "packets": emitted,
        "wire_bytes": wire_total,
        "captured_bytes": cap_total,
        "file_bytes": os.path.getsize(out),
        "span_s": sim.now,
        "tls_hellos": sim.tls_hellos,
        "sessions": sim.sessions,
        "kinds": sim.kinds,
        "setup_s": built - started,
        "elapsed_s": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="packets to write (default 1,000,000)")
    parser.add_argument(
        "--devices", type=int, default=1000, help="local devices (default 1000, at most 60,000)"
    )
    parser.add_argument("--out", default="benchmarks/out/lan_1m.pcap", help="output pcap path")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--snaplen", type=int, default=0, help="truncate captured bytes per packet (default: keep all)"
    )
    parser.add_argument(
        "--pps", type=float, default=280.0, help="mean packets per second of capture time (default 280)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary")
    args = parser.parse_args(argv)
    if not 1 <= args.devices <= 60_000:
        parser.error("--devices must be between 1 and 60,000")
    if args.packets < 1:
        parser.error("--packets must be positive")
    if args.snaplen and args.snaplen < 64:
        parser.error("--snaplen must be at least 64")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    info = generate(args.out, args.packets, args.devices, args.seed, args.snaplen, args.pps)
    if not args.quiet:
        n = info["packets"]
        kinds: Counter[str] = info["kinds"]
        counted = sum(kinds.values())
        print(
            f"wrote {args.out}: {n:,} packets, {info['file_bytes']:,} bytes "
            f"({info['wire_bytes']:,} on the wire), capture span {info['span_s'] / 3600:.2f} h "
            f"({n / max(info['span_s'], 1e-9):,.0f} pps), {info['tls_hellos']:,} TLS ClientHellos started; "
            f"generated in {info['elapsed_s']:.1f} s (setup {info['setup_s']:.1f} s)",
            file=sys.stderr,
        )
        # Categories are counted when a session or a round ends, so the share of the last
        # in-flight ones is missing; the shares are of the counted packets.
        shares = ", ".join(f"{k} {v / max(counted, 1):.1%}" for k, v in kinds.most_common())
        print(f"sessions: {dict(info['sessions'])}", file=sys.stderr)
        print(f"mix (of {counted:,} packets counted by category): {shares}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
