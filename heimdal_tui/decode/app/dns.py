"""DNS, mDNS and LLMNR messages (RFC 1035, RFC 6762, RFC 4795): bounded, defensive parsing.

Names keep their case and lose the trailing dot; each label's raw bytes are decoded as UTF-8 (invalid
bytes become ``\\xNN``) and the whole name passes through :func:`safe_text`. Compression pointers are
followed at most :data:`MAX_POINTER_JUMPS` times and never twice to the same offset, names are at most
255 bytes on the wire, and at most :data:`MAX_RECORDS_PER_SECTION` entries of a section are kept (the
rest are skipped without being decoded).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from heimdal_tui.common.text import ELLIPSIS, safe_text
from heimdal_tui.decode.app.errors import MalformedPayload

__all__ = [
    "MAX_POINTER_JUMPS",
    "MAX_RECORDS_PER_SECTION",
    "RTYPE_NAMES",
    "DnsMessage",
    "DnsRecord",
    "mdns_hostnames",
    "mdns_services",
    "parse_dns",
]

RTYPE_NAMES: dict[int, str] = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    10: "NULL",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    64: "SVCB",
    65: "HTTPS",
    255: "ANY",
}

MAX_RECORDS_PER_SECTION = 64
MAX_POINTER_JUMPS = 32
MAX_NAME_WIRE_BYTES = 255
MAX_TXT_STRINGS = 64
MAX_TXT_CHARS = 1024

_T_A, _T_NS, _T_CNAME, _T_PTR, _T_MX, _T_TXT, _T_AAAA, _T_SRV, _T_ANY = 1, 2, 5, 12, 15, 16, 28, 33, 255
_NAME_TYPES = frozenset({_T_NS, _T_CNAME, _T_PTR})

_HEADER = struct.Struct("!HHHHHH")
_QUESTION = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
_SRV = struct.Struct("!HHH")


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One resource record; ``value`` is a readable rendering of its data (see :func:`parse_dns`)."""

    name: str
    rtype: int
    value: str
    ttl: int


@dataclass(frozen=True, slots=True)
class DnsMessage:
    id: int
    is_response: bool
    opcode: int
    rcode: int
    questions: tuple[tuple[str, int], ...]
    answers: tuple[DnsRecord, ...]
    authorities: tuple[DnsRecord, ...]
    additionals: tuple[DnsRecord, ...]


def _read_name(msg: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset just after it (after the first pointer, if any)."""
    n = len(msg)
    labels: list[str] = []
    pos = offset
    after = -1
    jumps = 0
    visited: set[int] | None = None
    wire = 1  # the terminating zero (or root)
    while True:
        if pos >= n:
            raise MalformedPayload(f"DNS name truncated at offset {pos}")
        length = msg[pos]
        if length == 0:
            if after < 0:
                after = pos + 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                raise MalformedPayload(f"DNS name pointer truncated at offset {pos}")
            target = ((length & 0x3F) << 8) | msg[pos + 1]
            if after < 0:
                after = pos + 2
            if visited is None:
                visited = set()
            if target in visited or target == pos:
                raise MalformedPayload(f"DNS name pointer loop at offset {pos}")
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                raise MalformedPayload(
                    f"DNS name at offset {offset} follows more than {MAX_POINTER_JUMPS} pointers"
                )
            if target >= n:
                raise MalformedPayload(f"DNS name pointer at offset {pos} points past the message ({target})")
            visited.add(target)
            pos = target
            continue
        if kind:
            raise MalformedPayload(f"DNS name has unsupported label type 0x{kind:02x} at offset {pos}")
        wire += length + 1
        if wire > MAX_NAME_WIRE_BYTES:
            raise MalformedPayload(f"DNS name at offset {offset} is longer than {MAX_NAME_WIRE_BYTES} bytes")
        end = pos + 1 + length
        if end > n:
            raise MalformedPayload(f"DNS label truncated at offset {pos}")
        labels.append(msg[pos + 1 : end].decode("utf-8", errors="backslashreplace"))
        pos = end
    return safe_text(".".join(labels)), after


def _skip_name(msg: bytes, offset: int) -> int:
    """The offset just after the name at ``offset``, without decoding it or following pointers."""
    n = len(msg)
    pos = offset
    while True:
        if pos >= n:
            raise MalformedPayload(f"DNS name truncated at offset {pos}")
        length = msg[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 1 >= n:
                raise MalformedPayload(f"DNS name pointer truncated at offset {pos}")
            return pos + 2
        if length & 0xC0:
            raise MalformedPayload(
                f"DNS name has unsupported label type 0x{length & 0xC0:02x} at offset {pos}"
            )
        pos += 1 + length
        if pos - offset > MAX_NAME_WIRE_BYTES:
            raise MalformedPayload(f"DNS name at offset {offset} is longer than {MAX_NAME_WIRE_BYTES} bytes")


def _name_in_rdata(msg: bytes, start: int, end: int) -> tuple[str, int]:
    name, after = _read_name(msg, start)
    if after > end:
        raise MalformedPayload(f"DNS name at offset {start} runs past its record data")
    return name, after


def _rdata_text(msg: bytes, rtype: int, start: int, rdlen: int) -> str:
    end = start + rdlen
    if rtype == _T_A:
        if rdlen != 4:
            raise MalformedPayload(f"DNS A record at offset {start} has {rdlen} data bytes, expected 4")
        return socket.inet_ntop(socket.AF_INET, msg[start:end])
    if rtype == _T_AAAA:
        if rdlen != 16:
            raise MalformedPayload(f"DNS AAAA record at offset {start} has {rdlen} data bytes, expected 16")
        return socket.inet_ntop(socket.AF_INET6, msg[start:end])
    if rtype in _NAME_TYPES:
        return _name_in_rdata(msg, start, end)[0]
    if rtype == _T_MX:
        if rdlen < 3:
            raise MalformedPayload(f"DNS MX record at offset {start} is too short ({rdlen} bytes)")
        (priority,) = _U16.unpack_from(msg, start)
        return f"{priority} {_name_in_rdata(msg, start + 2, end)[0]}"
    if rtype == _T_SRV:
        if rdlen < 7:
            raise MalformedPayload(f"DNS SRV record at offset {start} is too short ({rdlen} bytes)")
        _priority, _weight, port = _SRV.unpack_from(msg, start)
        return f"{_name_in_rdata(msg, start + 6, end)[0]}:{port}"
    if rtype == _T_TXT:
        parts: list[str] = []
        pos = start
        while pos < end and len(parts) < MAX_TXT_STRINGS:
            length = msg[pos]
            if pos + 1 + length > end:
                raise MalformedPayload(f"DNS TXT string at offset {pos} runs past its record data")
            parts.append(safe_text(msg[pos + 1 : pos + 1 + length]))
            pos += 1 + length
        text = " ".join(parts)
        if len(text) > MAX_TXT_CHARS:
            text = text[: MAX_TXT_CHARS - 1] + ELLIPSIS
        return text
    return f"<{rdlen} bytes>"


def _read_record(msg: bytes, pos: int) -> tuple[DnsRecord, int]:
    name, pos = _read_name(msg, pos)
    if pos + 10 > len(msg):
        raise MalformedPayload(f"DNS record header truncated at offset {pos}")
    rtype, _rclass, ttl, rdlen = _RR_FIXED.unpack_from(msg, pos)
    pos += 10
    if pos + rdlen > len(msg):
        raise MalformedPayload(
            f"DNS record data truncated at offset {pos}: {rdlen} bytes claimed, {len(msg) - pos} present"
        )
    return DnsRecord(name, rtype, _rdata_text(msg, rtype, pos, rdlen), ttl), pos + rdlen


def _skip_record(msg: bytes, pos: int) -> int:
    pos = _skip_name(msg, pos)
    if pos + 10 > len(msg):
        raise MalformedPayload(f"DNS record header truncated at offset {pos}")
    (rdlen,) = _U16.unpack_from(msg, pos + 8)
    pos += 10 + rdlen
    if pos > len(msg):
        raise MalformedPayload(f"DNS record data truncated at offset {pos - rdlen}")
    return pos


def _read_section(msg: bytes, pos: int, count: int) -> tuple[tuple[DnsRecord, ...], int]:
    records: list[DnsRecord] = []
    for index in range(count):
        if index < MAX_RECORDS_PER_SECTION:
            record, pos = _read_record(msg, pos)
            records.append(record)
        else:
            pos = _skip_record(msg, pos)
    return tuple(records), pos


def _parse_message(msg: bytes) -> DnsMessage:
    if len(msg) < 12:
        raise MalformedPayload(f"DNS header truncated: {len(msg)} bytes, expected 12")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(msg, 0)
    pos = 12
    questions: list[tuple[str, int]] = []
    n = len(msg)
    for index in range(qdcount):
        if index < MAX_RECORDS_PER_SECTION:
            name, pos = _read_name(msg, pos)
        else:
            pos = _skip_name(msg, pos)
        if pos + 4 > n:
            raise MalformedPayload(f"DNS question truncated at offset {pos}")
        if index < MAX_RECORDS_PER_SECTION:
            questions.append((name, _QUESTION.unpack_from(msg, pos)[0]))
        pos += 4
    answers, pos = _read_section(msg, pos, ancount)
    authorities, pos = _read_section(msg, pos, nscount)
    additionals, pos = _read_section(msg, pos, arcount)
    return DnsMessage(
        id=ident,
        is_response=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        rcode=flags & 0xF,
        questions=tuple(questions),
        answers=answers,
        authorities=authorities,
        additionals=additionals,
    )


def parse_dns(payload: bytes, tcp: bool = False) -> DnsMessage:
    """The DNS message in a UDP payload, or the first one in a TCP payload (``tcp=True``).

    Record values: dotted IPv4 / compressed IPv6 for A/AAAA, the target name for CNAME/PTR/NS,
    ``"priority target"`` for MX, ``"target:port"`` for SRV, the strings joined with a space for TXT
    and ``"<N bytes>"`` for anything else. Trailing bytes after the last record are ignored.
    Raises :class:`MalformedPayload` on anything truncated or inconsistent.
    """
    msg = bytes(payload)
    if tcp:
        if len(msg) < 2:
            raise MalformedPayload("DNS over TCP length prefix truncated")
        (length,) = _U16.unpack_from(msg, 0)
        msg = msg[2 : 2 + length]
    return _parse_message(msg)


# DNS-SD's own meta names (_services._dns-sd._udp, b._dns-sd._udp, ...) name no service.
_DNS_SD_META = "_dns-sd._udp"


def _service_type(name: str) -> str | None:
    labels = name.lower().rsplit(".", 3)
    if len(labels) < 3 or labels[-1] != "local":
        return None
    svc, proto = labels[-3], labels[-2]
    if proto not in ("_tcp", "_udp") or len(svc) < 2 or svc[0] != "_":
        return None
    service = f"{svc}.{proto}"
    return None if service == _DNS_SD_META else service


def mdns_services(msg: DnsMessage) -> set[str]:
    """DNS-SD service types (lower case, e.g. ``"_airplay._tcp"``) named in an mDNS message.

    Looks at PTR (and ANY) questions, PTR record names and targets, and SRV record names, in every
    section; the DNS-SD meta names (``_services._dns-sd._udp``) are not services.
    """
    found: set[str] = set()
    for name, qtype in msg.questions:
        if qtype in (_T_PTR, _T_ANY):
            service = _service_type(name)
            if service:
                found.add(service)
    for section in (msg.answers, msg.authorities, msg.additionals):
        for record in section:
            if record.rtype == _T_PTR:
                candidates: tuple[str, ...] = (record.name, record.value)
            elif record.rtype == _T_SRV:
                candidates = (record.name,)
            else:
                continue
            for candidate in candidates:
                service = _service_type(candidate)
                if service:
                    found.add(service)
    return found


def _strip_local(name: str) -> str | None:
    if len(name) > 6 and name[-6:].lower() == ".local":
        return name[:-6]
    return None


def mdns_hostnames(msg: DnsMessage) -> set[str]:
    """Host names (without ``.local``) that an mDNS response answers for.

    These are the names of A/AAAA records ending in ``.local`` and the targets of SRV records, in the
    answer and additional sections of a response. A query's known-answer records describe other hosts,
    so a query yields nothing.
    """
    found: set[str] = set()
    if not msg.is_response:
        return found
    for section in (msg.answers, msg.additionals):
        for record in section:
            if record.rtype in (_T_A, _T_AAAA):
                host = _strip_local(record.name)
            elif record.rtype == _T_SRV:
                target = record.value.rpartition(":")[0]
                host = _strip_local(target) or target or None
            else:
                continue
            if host:
                found.add(host)
    return found
