"""Application payloads as raw bytes: DHCP, DNS/mDNS, NetBIOS-NS, NTP, SSDP, TLS, HTTP, SSH.

Each builder takes what varies (names, ids, random numbers drawn by the caller's seeded
``random.Random``) and returns the UDP or TCP payload. Nothing here reads the clock or the OS RNG.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from heimdal_tui.samples.packets import ip_bytes

# --------------------------------------------------------------------------------------------
# DHCP (RFC 2131 / 2132)

DHCPDISCOVER = 1
DHCPOFFER = 2
DHCPREQUEST = 3
DHCPACK = 5
DHCPRELEASE = 7
DHCPINFORM = 8

_DHCP_COOKIE = b"\x63\x82\x53\x63"


def dhcp_option(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


def dhcp_message(
    op: int,
    xid: int,
    chaddr: bytes,
    options: Sequence[tuple[int, bytes]],
    *,
    secs: int = 0,
    broadcast: bool = False,
    ciaddr: str = "0.0.0.0",
    yiaddr: str = "0.0.0.0",
    siaddr: str = "0.0.0.0",
) -> bytes:
    """A BOOTP message carrying DHCP options, padded to the 300-byte BOOTP minimum."""
    head = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        op,
        1,
        6,
        0,
        xid,
        secs,
        0x8000 if broadcast else 0,
        ip_bytes(ciaddr),
        ip_bytes(yiaddr),
        ip_bytes(siaddr),
        b"\x00" * 4,
        chaddr.ljust(16, b"\x00"),
        b"",
        b"",
    )
    body = head + _DHCP_COOKIE + b"".join(dhcp_option(c, v) for c, v in options) + b"\xff"
    return body.ljust(300, b"\x00")


# --------------------------------------------------------------------------------------------
# DNS and mDNS (RFC 1035, 6762, 6763)

A = 1
CNAME = 5
SOA = 6
PTR = 12
TXT = 16
AAAA = 28
SRV = 33
OPT = 41
NSEC = 47
HTTPS = 65
ANY = 255

CLASS_IN = 1
CACHE_FLUSH = 0x8001  # mDNS: class IN with the cache-flush bit (unique records)
QU = 0x8001  # mDNS: question asking for a unicast reply

QTYPE_NAMES = {"A": A, "AAAA": AAAA, "TXT": TXT, "PTR": PTR, "SRV": SRV, "HTTPS": HTTPS, "ANY": ANY}


@dataclass(frozen=True)
class RR:
    """A resource record. ``rdata`` by type: A/AAAA address text, PTR/CNAME a name, TXT a tuple of
    byte strings, SRV ``(priority, weight, port, target)``, SOA ``(mname, rname, serial)``."""

    name: str
    rtype: int
    rdata: object
    ttl: int = 120
    rclass: int = CLASS_IN


class _DnsWriter:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.names: dict[tuple[str, ...], int] = {}

    def name(self, name: str) -> None:
        labels = [part for part in name.rstrip(".").split(".") if part]
        for i, label in enumerate(labels):
            suffix = tuple(part.lower() for part in labels[i:])
            if suffix in self.names:
                self.buf += struct.pack("!H", 0xC000 | self.names[suffix])
                return
            if len(self.buf) < 0x3FFF:
                self.names[suffix] = len(self.buf)
            raw = label.encode()
            if len(raw) > 63:
                raise ValueError(f"DNS label longer than 63 bytes: {label!r}")
            self.buf.append(len(raw))
            self.buf += raw
        self.buf.append(0)

    def rr(self, rr: RR) -> None:
        self.name(rr.name)
        self.buf += struct.pack("!HHIH", rr.rtype, rr.rclass, rr.ttl, 0)
        start = len(self.buf)
        data = rr.rdata
        if rr.rtype == A:
            assert isinstance(data, str)
            self.buf += ip_bytes(data)
        elif rr.rtype == AAAA:
            assert isinstance(data, str)
            self.buf += socket.inet_pton(socket.AF_INET6, data)
        elif rr.rtype in (PTR, CNAME):
            assert isinstance(data, str)
            self.name(data)
        elif rr.rtype == TXT:
            assert isinstance(data, tuple)
            for s in data:
                self.buf.append(len(s))
                self.buf += s
        elif rr.rtype == SRV:
            assert isinstance(data, tuple)
            prio, weight, port, target = data
            self.buf += struct.pack("!HHH", prio, weight, port)
            self.name(target)
        elif rr.rtype == SOA:
            assert isinstance(data, tuple)
            mname, rname, serial = data
            self.name(mname)
            self.name(rname)
            self.buf += struct.pack("!IIIII", serial, 10800, 3600, 604800, 1800)
        elif rr.rtype == NSEC:
            # mDNS negative-answer NSEC: next name = itself, bitmap of the types that exist.
            assert isinstance(data, tuple)
            self.name(rr.name)
            bitmap = bytearray(32)
            for t in data:
                bitmap[t // 8] |= 0x80 >> (t % 8)
            used = max((i for i, b in enumerate(bitmap) if b), default=0) + 1
            self.buf += bytes([0, used]) + bitmap[:used]
        elif rr.rtype == OPT:
            assert isinstance(data, bytes)
            self.buf += data
        else:
            assert isinstance(data, bytes)
            self.buf += data
        struct.pack_into("!H", self.buf, start - 2, len(self.buf) - start)


def dns_message(
    txid: int,
    flags: int,
    questions: Iterable[tuple[str, int, int]] = (),
    answers: Iterable[RR] = (),
    authority: Iterable[RR] = (),
    additional: Iterable[RR] = (),
) -> bytes:
    """A DNS message with name compression; questions are ``(name, qtype, qclass)``."""
    qs, an, ns, ar = list(questions), list(answers), list(authority), list(additional)
    w = _DnsWriter()
    w.buf += struct.pack("!HHHHHH", txid, flags, len(qs), len(an), len(ns), len(ar))
    for qname, qtype, qclass in qs:
        w.name(qname)
        w.buf += struct.pack("!HH", qtype, qclass)
    for rr in (*an, *ns, *ar):
        w.rr(rr)
    return bytes(w.buf)


def edns_opt(udp_size: int = 1232) -> RR:
    """An EDNS(0) OPT pseudo-record (its class field carries the UDP payload size)."""
    return RR("", OPT, b"", ttl=0, rclass=udp_size)


DNS_QUERY_FLAGS = 0x0100  # RD
DNS_RESPONSE_FLAGS = 0x8180  # QR RD RA, NOERROR
DNS_NXDOMAIN_FLAGS = 0x8183
MDNS_RESPONSE_FLAGS = 0x8400  # QR AA


@dataclass(frozen=True)
class MdnsService:
    """One DNS-SD service a device advertises."""

    instance: str  # "Annas-iPhone"
    service: str  # "_companion-link._tcp"
    port: int
    txt: tuple[bytes, ...] = (b"",)

    @property
    def type_name(self) -> str:
        return f"{self.service}.local"

    @property
    def instance_name(self) -> str:
        return f"{self.instance}.{self.service}.local"


def mdns_announcement(host: str, ip: str, services: Sequence[MdnsService], ttl: int = 4500) -> bytes:
    """An unsolicited mDNS response announcing ``services`` and the host's A record."""
    hostname = f"{host}.local"
    answers: list[RR] = []
    for svc in services:
        answers.append(RR(svc.type_name, PTR, svc.instance_name, ttl))
        answers.append(RR(svc.instance_name, SRV, (0, 0, svc.port, hostname), 120, CACHE_FLUSH))
        answers.append(RR(svc.instance_name, TXT, svc.txt, ttl, CACHE_FLUSH))
    for svc in services:
        answers.append(RR("_services._dns-sd._udp.local", PTR, svc.type_name, ttl))
    answers.append(RR(hostname, A, ip, 120, CACHE_FLUSH))
    rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    answers.append(RR(rev, PTR, hostname, 120, CACHE_FLUSH))
    return dns_message(0, MDNS_RESPONSE_FLAGS, answers=answers)


def mdns_response(host: str, ip: str, services: Sequence[MdnsService], ttl: int = 4500) -> bytes:
    """An answer to a PTR question: PTR records, SRV/TXT/A in the additional section."""
    hostname = f"{host}.local"
    answers = [RR(s.type_name, PTR, s.instance_name, ttl) for s in services]
    extra: list[RR] = []
    for svc in services:
        extra.append(RR(svc.instance_name, SRV, (0, 0, svc.port, hostname), 120, CACHE_FLUSH))
        extra.append(RR(svc.instance_name, TXT, svc.txt, ttl, CACHE_FLUSH))
    extra.append(RR(hostname, A, ip, 120, CACHE_FLUSH))
    return dns_message(0, MDNS_RESPONSE_FLAGS, answers=answers, additional=extra)


def mdns_query(names: Sequence[str], qtype: int = PTR, unicast_response: bool = False) -> bytes:
    qclass = QU if unicast_response else CLASS_IN
    return dns_message(0, 0, [(n, qtype, qclass) for n in names])


# --------------------------------------------------------------------------------------------
# NetBIOS name service (RFC 1002), as Windows broadcasts it on a LAN without WINS


def netbios_name(name: str, suffix: int) -> str:
    """First-level encoding of a NetBIOS name (one 32-letter DNS label)."""
    raw = name.upper()[:15].ljust(15).encode() + bytes([suffix])
    return "".join(chr(0x41 + (b >> 4)) + chr(0x41 + (b & 0x0F)) for b in raw)


def nbns_registration(txid: int, name: str, suffix: int, ip: str, group: bool = False) -> bytes:
    encoded = netbios_name(name, suffix)
    rdata = struct.pack("!H4s", 0x8000 if group else 0, ip_bytes(ip))
    return dns_message(
        txid,
        0x2910,  # opcode 5 (registration), RD, broadcast
        [(encoded, 0x20, CLASS_IN)],
        additional=[RR(encoded, 0x20, rdata, 300000)],
    )


def nbns_query(txid: int, name: str, suffix: int) -> bytes:
    return dns_message(txid, 0x0110, [(netbios_name(name, suffix), 0x20, CLASS_IN)])


def nbns_positive_response(txid: int, name: str, suffix: int, ip: str) -> bytes:
    rdata = struct.pack("!H4s", 0, ip_bytes(ip))
    return dns_message(txid, 0x8500, answers=[RR(netbios_name(name, suffix), 0x20, rdata, 300000)])


# --------------------------------------------------------------------------------------------
# NTP (RFC 5905)

_NTP_EPOCH_OFFSET = 2_208_988_800


def ntp_timestamp(t_us: int) -> int:
    sec, usec = divmod(t_us, 1_000_000)
    return ((sec + _NTP_EPOCH_OFFSET) << 32) | ((usec << 32) // 1_000_000)


def ntp_client(xmit_us: int, version: int = 4) -> bytes:
    return struct.pack(
        "!BBbbII4sQQQQ", (version << 3) | 3, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, ntp_timestamp(xmit_us)
    )


def ntp_server(
    client_xmit_us: int,
    recv_us: int,
    xmit_us: int,
    ref_us: int,
    stratum: int,
    ref_id: bytes,
    version: int = 4,
) -> bytes:
    return struct.pack(
        "!BBbbII4sQQQQ",
        (version << 3) | 4,
        stratum,
        3,
        -24,
        0x0000_0A3D,  # root delay ~40 ms
        0x0000_0C49,  # root dispersion ~48 ms
        ref_id,
        ntp_timestamp(ref_us),
        ntp_timestamp(client_xmit_us),
        ntp_timestamp(recv_us),
        ntp_timestamp(xmit_us),
    )


# --------------------------------------------------------------------------------------------
# SSDP (UPnP 1.0 discovery)


def ssdp_notify(location: str, nt: str, usn: str, server: str, max_age: int = 1800) -> bytes:
    return (
        "NOTIFY * HTTP/1.1\r\n"
        "HOST: 239.255.255.250:1900\r\n"
        f"CACHE-CONTROL: max-age={max_age}\r\n"
        f"LOCATION: {location}\r\n"
        f"NT: {nt}\r\n"
        "NTS: ssdp:alive\r\n"
        f"SERVER: {server}\r\n"
        f"USN: {usn}\r\n"
        "\r\n"
    ).encode()


def ssdp_msearch(st: str, mx: int = 1, user_agent: str = "") -> bytes:
    ua = f"USER-AGENT: {user_agent}\r\n" if user_agent else ""
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        "HOST: 239.255.255.250:1900\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {mx}\r\n"
        f"ST: {st}\r\n"
        f"{ua}\r\n"
    ).encode()


def ssdp_search_response(location: str, st: str, usn: str, server: str, date: str) -> bytes:
    return (
        "HTTP/1.1 200 OK\r\n"
        "CACHE-CONTROL: max-age=1800\r\n"
        f"DATE: {date}\r\n"
        "EXT:\r\n"
        f"LOCATION: {location}\r\n"
        f"SERVER: {server}\r\n"
        f"ST: {st}\r\n"
        f"USN: {usn}\r\n"
        "\r\n"
    ).encode()


# --------------------------------------------------------------------------------------------
# TLS (RFC 8446 / 5246): ClientHello in full, the rest as record headers over opaque bytes

_GREASE = (0x0A0A, 0x1A1A, 0x2A2A, 0x3A3A, 0x4A4A, 0x5A5A, 0x6A6A, 0x7A7A, 0x8A8A, 0x9A9A, 0xAAAA)


@dataclass(frozen=True)
class TlsProfile:
    """The ClientHello shape of one TLS stack (what a JA3/JA4 fingerprint sees)."""

    name: str
    ciphers: tuple[int, ...]
    groups: tuple[int, ...]
    extensions: tuple[str, ...]
    grease: bool = False
    tls13: bool = True
    pad_to: int = 0


_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)


def _hex16(text: str) -> tuple[int, ...]:
    """``"1301 1302"`` -> ``(0x1301, 0x1302)``: cipher-suite and group lists as specs print them."""
    return tuple(int(v, 16) for v in text.split())


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


TLS_PROFILES = {
    "chrome": TlsProfile(
        "chrome",
        _hex16("1301 1302 1303 c02b c02f c02c c030 cca9 cca8 c013 c014 009c 009d 002f 0035"),
        _hex16("001d 0017 0018"),
        _words(
            "sni ems reneg groups points ticket alpn status sigalgs sct "
            "keyshare pskmodes versions compress_cert"
        ),
        grease=True,
        pad_to=512,
    ),
    "apple": TlsProfile(
        "apple",
        _hex16(
            "1301 1302 1303 c02c c02b cca9 c030 c02f cca8 c00a c009 c014 c013 "
            "009d 009c 0035 002f c008 c012 000a"
        ),
        _hex16("001d 0017 0018 0019"),
        _words(
            "sni ems reneg groups points alpn status sigalgs sct keyshare pskmodes versions compress_cert"
        ),
        grease=True,
    ),
    "schannel": TlsProfile(
        "schannel",
        _hex16(
            "1302 1301 1303 c02c c02b c030 c02f c024 c023 c028 c027 c00a c009 c014 c013 "
            "009d 009c 003d 003c 0035 002f"
        ),
        _hex16("001d 0017 0018"),
        _words("sni status groups points sigalgs ticket alpn ems reneg versions pskmodes keyshare"),
    ),
    "openssl": TlsProfile(
        "openssl",
        _hex16(
            "1302 1303 1301 c02c c030 009f cca9 cca8 ccaa c02b c02f 009e c024 c028 006b c023 "
            "c027 0067 c00a c014 0039 c009 c013 0033 009d 009c 003d 003c 0035 002f 00ff"
        ),
        _hex16("001d 0017 001e 0019 0018"),
        _words("sni points groups ticket etm ems sigalgs versions pskmodes keyshare"),
    ),
    "mbedtls": TlsProfile(
        "mbedtls",
        _hex16("c02c c02b c030 c02f c024 c023 c028 c027 c00a c009 c014 c013 009d 009c 0035 002f 00ff"),
        _hex16("0017 0018"),
        _words("sni sigalgs groups points etm ems ticket"),
        tls13=False,
    ),
}


def _ext(code: int, body: bytes) -> bytes:
    return struct.pack("!HH", code, len(body)) + body


def _u16_list(values: Iterable[int]) -> bytes:
    data = b"".join(struct.pack("!H", v) for v in values)
    return struct.pack("!H", len(data)) + data


def tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def client_hello(rng: random.Random, sni: str, profile: TlsProfile, alpn: Sequence[str] = ()) -> bytes:
    """A complete ClientHello record for ``sni``."""
    grease = rng.choice(_GREASE) if profile.grease else 0
    ciphers = ((grease,) if grease else ()) + profile.ciphers
    groups = ((grease,) if grease else ()) + profile.groups
    host = sni.encode()
    exts: list[bytes] = []
    if grease:
        exts.append(_ext(rng.choice(_GREASE), b""))
    for name in profile.extensions:
        if name == "sni":
            entry = b"\x00" + struct.pack("!H", len(host)) + host
            exts.append(_ext(0x0000, struct.pack("!H", len(entry)) + entry))
        elif name == "ems":
            exts.append(_ext(0x0017, b""))
        elif name == "etm":
            exts.append(_ext(0x0016, b""))
        elif name == "reneg":
            exts.append(_ext(0xFF01, b"\x00"))
        elif name == "groups":
            exts.append(_ext(0x000A, _u16_list(groups)))
        elif name == "points":
            exts.append(_ext(0x000B, b"\x01\x00"))
        elif name == "ticket":
            exts.append(_ext(0x0023, b""))
        elif name == "alpn" and alpn:
            protos = b"".join(bytes([len(p)]) + p.encode() for p in alpn)
            exts.append(_ext(0x0010, struct.pack("!H", len(protos)) + protos))
        elif name == "status":
            exts.append(_ext(0x0005, b"\x01\x00\x00\x00\x00"))
        elif name == "sigalgs":
            exts.append(_ext(0x000D, _u16_list(_SIGALGS)))
        elif name == "sct":
            exts.append(_ext(0x0012, b""))
        elif name == "keyshare" and profile.tls13:
            share = b""
            if grease:
                share += struct.pack("!HH", grease, 1) + b"\x00"
            share += struct.pack("!HH", 0x001D, 32) + rng.randbytes(32)
            exts.append(_ext(0x0033, struct.pack("!H", len(share)) + share))
        elif name == "pskmodes" and profile.tls13:
            exts.append(_ext(0x002D, b"\x01\x01"))
        elif name == "versions" and profile.tls13:
            versions = ((grease,) if grease else ()) + (0x0304, 0x0303)
            data = b"".join(struct.pack("!H", v) for v in versions)
            exts.append(_ext(0x002B, bytes([len(data)]) + data))
        elif name == "compress_cert":
            exts.append(_ext(0x001B, b"\x02\x00\x02"))
    if grease:
        exts.append(_ext(rng.choice(_GREASE), b"\x00"))
    session_id = rng.randbytes(32) if profile.tls13 else b""
    body = (
        struct.pack("!H", 0x0303)
        + rng.randbytes(32)
        + bytes([len(session_id)])
        + session_id
        + _u16_list(ciphers)
        + b"\x01\x00"
    )
    ext_bytes = b"".join(exts)
    if profile.pad_to:
        unpadded = 4 + len(body) + 2 + len(ext_bytes)
        if unpadded < profile.pad_to:
            pad = max(0, profile.pad_to - unpadded - 4)
            ext_bytes += _ext(0x0015, b"\x00" * pad)
    body += struct.pack("!H", len(ext_bytes)) + ext_bytes
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return tls_record(0x16, handshake, 0x0301)


def hello_session_id(client_hello_record: bytes) -> bytes:
    """The legacy_session_id of a ClientHello record (after header, type, length, version, random)."""
    length = client_hello_record[43]
    return client_hello_record[44 : 44 + length]


def server_hello(rng: random.Random, tls13: bool, cipher: int, client_session_id: bytes = b"") -> bytes:
    """The ServerHello record (plus ChangeCipherSpec for TLS 1.3's middlebox compatibility).

    A TLS 1.3 server echoes the client's legacy_session_id; a TLS 1.2 server issues a new one."""
    if tls13:
        exts = _ext(0x002B, b"\x03\x04") + _ext(0x0033, struct.pack("!HH", 0x001D, 32) + rng.randbytes(32))
        session_id = client_session_id
    else:
        exts = _ext(0xFF01, b"\x00") + _ext(0x0017, b"") + _ext(0x000B, b"\x01\x00")
        session_id = rng.randbytes(32)
    body = (
        struct.pack("!H", 0x0303)
        + rng.randbytes(32)
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!HB", cipher, 0)
        + struct.pack("!H", len(exts))
        + exts
    )
    record = tls_record(0x16, b"\x02" + len(body).to_bytes(3, "big") + body)
    if tls13:
        record += tls_record(0x14, b"\x01")
    return record


def app_data_head(rng: random.Random, length: int, head: int = 48) -> bytes:
    """The first ``head`` bytes of an application-data record of ``length`` bytes in total."""
    body = max(0, length - 5)
    return struct.pack("!BHH", 0x17, 0x0303, min(body, 0xFFFF)) + rng.randbytes(max(0, min(head, length) - 5))


# --------------------------------------------------------------------------------------------
# HTTP/1.1 and SSH

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(t_us: int) -> str:
    """An IMF-fixdate (RFC 9110) for a time in microseconds since the epoch."""
    when = time.gmtime(t_us // 1_000_000)
    return (
        f"{_DAYS[when.tm_wday]}, {when.tm_mday:02d} {_MONTHS[when.tm_mon - 1]} {when.tm_year} "
        f"{when.tm_hour:02d}:{when.tm_min:02d}:{when.tm_sec:02d} GMT"
    )


def http_request(
    method: str, path: str, host: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def http_response(status: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def ssh_kexinit(
    rng: random.Random, kex: Sequence[str], hostkey: Sequence[str], ciphers: Sequence[str]
) -> bytes:
    """An SSH_MSG_KEXINIT binary packet (RFC 4253 section 7.1), unencrypted."""

    def namelist(items: Sequence[str]) -> bytes:
        data = ",".join(items).encode()
        return struct.pack("!I", len(data)) + data

    macs = ["umac-64-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"]
    comp = ["none", "zlib@openssh.com"]
    payload = (
        b"\x14"
        + rng.randbytes(16)
        + namelist(kex)
        + namelist(hostkey)
        + namelist(ciphers)
        + namelist(ciphers)
        + namelist(macs)
        + namelist(macs)
        + namelist(comp)
        + namelist(comp)
        + namelist([])
        + namelist([])
        + b"\x00"
        + b"\x00\x00\x00\x00"
    )
    pad = 8 - ((5 + len(payload)) % 8)
    if pad < 4:
        pad += 8
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + b"\x00" * pad
