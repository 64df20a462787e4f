"""The TLS ClientHello (RFC 8446 4.1.2): server name, ALPN protocols and offered versions.

Only the start of a TCP stream is looked at. A ClientHello split over several handshake records in
the same payload is reassembled; one cut short by the segment (or the snap length) is parsed as far
as it goes: once the server name has been read, a cut or inconsistency later on still yields what was
read, before that it is :class:`MalformedPayload`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from heimdal_tui.common.text import safe_text
from heimdal_tui.decode.app.errors import MalformedPayload

__all__ = ["TlsClientHello", "parse_client_hello"]

MAX_RECORDS = 8
MAX_EXTENSIONS = 128
MAX_ALPN = 16
MAX_VERSIONS = 32
MAX_RECORD_LEN = 2**14 + 2048

_CONTENT_HANDSHAKE = 0x16
_HANDSHAKE_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_EXT_SUPPORTED_VERSIONS = 43

_U16 = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class TlsClientHello:
    sni: str | None
    version: int
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise MalformedPayload(f"TLS ClientHello {what} truncated at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        if self.pos >= self.end:
            raise MalformedPayload(f"TLS ClientHello {what} truncated at offset {self.pos}")
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self, what: str) -> int:
        if self.pos + 2 > self.end:
            raise MalformedPayload(f"TLS ClientHello {what} truncated at offset {self.pos}")
        self.pos += 2
        return int(_U16.unpack_from(self.data, self.pos - 2)[0])


class _Hello:
    __slots__ = ("alpn", "sni", "version", "versions")

    def __init__(self) -> None:
        self.sni: str | None = None
        self.version = 0
        self.alpn: tuple[str, ...] = ()
        self.versions: tuple[int, ...] = ()

    def result(self) -> TlsClientHello:
        return TlsClientHello(self.sni, self.version, self.alpn, self.versions)


def _server_name(data: bytes) -> str | None:
    reader = _Reader(data, 0, len(data))
    list_end = min(reader.u16("server name list length") + 2, len(data))
    reader.end = list_end
    while reader.pos < list_end:
        name_type = reader.u8("server name type")
        name = reader.take(reader.u16("server name length"), "server name")
        if name_type == 0:
            return safe_text(name)
    return None


def _alpn(data: bytes) -> tuple[str, ...]:
    reader = _Reader(data, 0, len(data))
    reader.end = min(reader.u16("ALPN list length") + 2, len(data))
    protocols: list[str] = []
    while reader.pos < reader.end and len(protocols) < MAX_ALPN:
        protocols.append(safe_text(reader.take(reader.u8("ALPN protocol length"), "ALPN protocol")))
    return tuple(protocols)


def _supported_versions(data: bytes) -> tuple[int, ...]:
    if not data:
        raise MalformedPayload("TLS ClientHello supported_versions extension is empty")
    count = min(data[0] // 2, (len(data) - 1) // 2, MAX_VERSIONS)
    return tuple(_U16.unpack_from(data, 1 + 2 * i)[0] for i in range(count))


def _parse_body(reader: _Reader, complete: bool, hello: _Hello) -> None:
    hello.version = reader.u16("version")
    reader.take(32, "random")
    session_id_len = reader.u8("session id length")
    if session_id_len > 32:
        raise MalformedPayload(f"TLS ClientHello session id length {session_id_len} exceeds 32")
    reader.take(session_id_len, "session id")
    suites_len = reader.u16("cipher suites length")
    if suites_len % 2:
        raise MalformedPayload(f"TLS ClientHello cipher suites length {suites_len} is odd")
    reader.take(suites_len, "cipher suites")
    reader.take(reader.u8("compression methods length"), "compression methods")
    if reader.pos == reader.end and complete:
        return  # no extensions at all
    ext_total = reader.u16("extensions length")
    ext_end = reader.pos + ext_total
    if ext_end > reader.end and complete:
        raise MalformedPayload(
            f"TLS ClientHello extensions length {ext_total} overruns the hello at offset {reader.pos}"
        )
    cut = ext_end > reader.end
    reader.end = min(reader.end, ext_end)
    count = 0
    while reader.pos < reader.end and count < MAX_EXTENSIONS:
        ext_type = reader.u16("extension type")
        ext_data = reader.take(reader.u16("extension length"), f"extension {ext_type}")
        if ext_type == _EXT_SERVER_NAME and hello.sni is None:
            hello.sni = _server_name(ext_data)
        elif ext_type == _EXT_ALPN:
            hello.alpn = _alpn(ext_data)
        elif ext_type == _EXT_SUPPORTED_VERSIONS:
            hello.versions = _supported_versions(ext_data)
        count += 1
    if cut and count < MAX_EXTENSIONS:
        raise MalformedPayload(f"TLS ClientHello extensions truncated at offset {reader.pos}")


def parse_client_hello(payload: bytes) -> TlsClientHello | None:
    """The ClientHello at the start of a TCP payload, or None if the payload does not start one.

    None when the payload is not a TLS handshake record (first byte 0x16, version 3.x) holding a
    ClientHello (handshake type 1). :class:`MalformedPayload` when it is one but is truncated or
    inconsistent before the server name was read.
    """
    data = bytes(payload)
    if not data or data[0] != _CONTENT_HANDSHAKE:
        return None
    if len(data) >= 3 and (data[1] != 3 or data[2] > 4):
        return None  # not a TLS record version: some other protocol starting with 0x16
    if len(data) < 6:
        if len(data) >= 2 and data[1] != 3:
            return None
        raise MalformedPayload(f"TLS record header truncated: {len(data)} bytes")
    if data[5] != _HANDSHAKE_CLIENT_HELLO:
        return None
    fast = _whole_hello(data)
    if fast is not None:
        return fast
    (record_len,) = _U16.unpack_from(data, 3)
    if record_len == 0 or record_len > MAX_RECORD_LEN:
        raise MalformedPayload(f"TLS record length {record_len} is invalid")

    # The handshake message may continue in further handshake records of the same payload.
    handshake = data[5 : 5 + record_len]
    pos = 5 + record_len
    records = 1
    while pos + 5 <= len(data) and records < MAX_RECORDS and data[pos] == _CONTENT_HANDSHAKE:
        if len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
            break
        (record_len,) = _U16.unpack_from(data, pos + 3)
        handshake += data[pos + 5 : pos + 5 + record_len]
        pos += 5 + record_len
        records += 1

    if len(handshake) < 4:
        raise MalformedPayload(f"TLS handshake header truncated: {len(handshake)} bytes")
    hello_len = int.from_bytes(handshake[1:4], "big")
    end = 4 + hello_len
    complete = len(handshake) >= end
    hello = _Hello()
    try:
        _parse_body(_Reader(handshake, 4, min(end, len(handshake))), complete, hello)
    except MalformedPayload:
        if hello.sni is None:
            raise
    return hello.result()


def _whole_hello(data: bytes) -> TlsClientHello | None:
    """The common case, read in one pass: a well-formed ClientHello inside the first record.

    None whenever anything is unusual (the hello continues in a later record, is cut short, or any
    length disagrees): the general parser then reads it and says what is wrong. For every hello this
    accepts, the result is the general parser's.
    """
    n = len(data)
    record_len = (data[3] << 8) | data[4]
    hello_end = 9 + int.from_bytes(data[6:9], "big")
    if record_len == 0 or record_len > MAX_RECORD_LEN or hello_end > 5 + record_len or 5 + record_len > n:
        return None
    pos = 9 + 2 + 32  # version, random
    if pos + 1 > hello_end:
        return None
    session_id_len = data[pos]
    pos += 1 + session_id_len
    if session_id_len > 32 or pos + 2 > hello_end:
        return None
    suites_len = (data[pos] << 8) | data[pos + 1]
    pos += 2 + suites_len
    if suites_len % 2 or pos + 1 > hello_end:
        return None
    pos += 1 + data[pos]  # compression methods
    if pos >= hello_end:
        return None  # no extensions (or cut): rare, left to the general parser
    if pos + 2 > hello_end:
        return None
    ext_end = pos + 2 + ((data[pos] << 8) | data[pos + 1])
    pos += 2
    if ext_end > hello_end:
        return None
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    versions: tuple[int, ...] = ()
    count = 0
    try:
        while pos < ext_end and count < MAX_EXTENSIONS:
            if pos + 4 > ext_end:
                return None
            ext_type = (data[pos] << 8) | data[pos + 1]
            body = pos + 4
            pos = body + ((data[pos + 2] << 8) | data[pos + 3])
            if pos > ext_end:
                return None
            if ext_type == _EXT_SERVER_NAME:
                if sni is None:
                    sni = _server_name(data[body:pos])
            elif ext_type == _EXT_ALPN:
                alpn = _alpn(data[body:pos])
            elif ext_type == _EXT_SUPPORTED_VERSIONS:
                versions = _supported_versions(data[body:pos])
            count += 1
    except MalformedPayload:
        return None
    return TlsClientHello(sni, (data[9] << 8) | data[10], alpn, versions)
