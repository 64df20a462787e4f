"""NetBIOS Name Service packets (RFC 1002, UDP 137): the name asked for or registered, and its addresses.

The first name of the packet (that of the question, or of the first record when there is none) is
decoded from its first-level encoding; NB records in the answer and additional sections give IPv4
addresses (at most :data:`MAX_ADDRESSES`). The NetBIOS datagram service (UDP 138) is not parsed.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from heimdal_tui.common.text import safe_text
from heimdal_tui.decode.app.errors import MalformedPayload

__all__ = ["MAX_ADDRESSES", "NbnsMessage", "parse_nbns"]

MAX_ADDRESSES = 64
MAX_RECORDS = 64
MAX_NAME_WIRE_BYTES = 255

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_TYPE_NB = 0x0020


@dataclass(frozen=True, slots=True)
class NbnsMessage:
    is_response: bool
    name: str
    suffix: int
    addresses: tuple[str, ...]


def _skip_name(data: bytes, offset: int) -> int:
    n = len(data)
    pos = offset
    while True:
        if pos >= n:
            raise MalformedPayload(f"NBNS name truncated at offset {pos}")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 1 >= n:
                raise MalformedPayload(f"NBNS name pointer truncated at offset {pos}")
            return pos + 2
        if length & 0xC0:
            raise MalformedPayload(f"NBNS name has a bad label length 0x{length:02x} at offset {pos}")
        pos += 1 + length
        if pos - offset > MAX_NAME_WIRE_BYTES:
            raise MalformedPayload(f"NBNS name at offset {offset} is longer than {MAX_NAME_WIRE_BYTES} bytes")


def _decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """The first-level decoded name at ``offset``: (name without padding, suffix byte)."""
    if offset >= len(data):
        raise MalformedPayload(f"NBNS name truncated at offset {offset}")
    if data[offset] != 32:
        raise MalformedPayload(f"NBNS name at offset {offset} has length {data[offset]}, expected 32")
    encoded = data[offset + 1 : offset + 33]
    if len(encoded) != 32:
        raise MalformedPayload(f"NBNS name truncated at offset {offset}")
    raw = bytearray(16)
    for i in range(16):
        high = encoded[2 * i] - 0x41
        low = encoded[2 * i + 1] - 0x41
        if not (0 <= high < 16 and 0 <= low < 16):
            raise MalformedPayload(f"NBNS name at offset {offset} is not first-level encoded")
        raw[i] = (high << 4) | low
    name = safe_text(bytes(raw[:15]).rstrip(b" \x00"))
    return name, raw[15]


def _read_addresses(data: bytes, pos: int, rdlen: int, out: list[str]) -> None:
    end = pos + rdlen
    # NB data: entries of NB_FLAGS (2 bytes) + IPv4 address (4 bytes).
    while pos + 6 <= end and len(out) < MAX_ADDRESSES:
        out.append(socket.inet_ntop(socket.AF_INET, data[pos + 2 : pos + 6]))
        pos += 6


def parse_nbns(payload: bytes) -> NbnsMessage:
    """The NBNS packet in a UDP payload; :class:`MalformedPayload` when it is truncated or not one."""
    data = bytes(payload)
    n = len(data)
    if n < 12:
        raise MalformedPayload(f"NBNS header truncated: {n} bytes, expected 12")
    _ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data, 0)
    if qdcount + ancount + nscount + arcount == 0:
        raise MalformedPayload("NBNS packet has no question and no record")
    name, suffix = _decode_name(data, 12)
    pos = 12
    for _ in range(min(qdcount, MAX_RECORDS)):
        pos = _skip_name(data, pos) + 4
        if pos > n:
            raise MalformedPayload(f"NBNS question truncated at offset {pos - 4}")
    addresses: list[str] = []
    # Past a section larger than MAX_RECORDS, the later sections cannot be found: they are not read.
    sections = ((ancount, True), (nscount, False), (arcount, True)) if qdcount <= MAX_RECORDS else ()
    for count, wanted in sections:
        for _ in range(min(count, MAX_RECORDS)):
            pos = _skip_name(data, pos)
            if pos + 10 > n:
                raise MalformedPayload(f"NBNS record header truncated at offset {pos}")
            rtype, _rclass, _ttl, rdlen = _RR_FIXED.unpack_from(data, pos)
            pos += 10
            if pos + rdlen > n:
                raise MalformedPayload(f"NBNS record data truncated at offset {pos}")
            if wanted and rtype == _TYPE_NB:
                _read_addresses(data, pos, rdlen, addresses)
            pos += rdlen
        if count > MAX_RECORDS:
            break
    return NbnsMessage(
        is_response=bool(flags & 0x8000),
        name=name,
        suffix=suffix,
        addresses=tuple(addresses),
    )
