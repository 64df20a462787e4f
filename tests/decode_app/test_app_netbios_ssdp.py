"""NetBIOS name service and SSDP parsing."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.netbios import (
    NBNS_ADD_ENTRY,
    NBNSHeader,
    NBNSQueryRequest,
    NBNSQueryResponse,
    NBNSRegistrationRequest,
)

from heimdal_tui.common.text import is_safe
from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app.netbios import MAX_ADDRESSES, NbnsMessage, parse_nbns
from heimdal_tui.decode.app.ssdp import SsdpMessage, parse_ssdp

# scapy's SUFFIX field holds the two encoded characters of the suffix byte: 0x4141 ("AA") is 0x00.
SUFFIX_00, SUFFIX_20, SUFFIX_1D = 0x4141, 0x4341, 0x424E


def _encode(name: bytes, suffix: int) -> bytes:
    raw = name.ljust(15, b" ") + bytes([suffix])
    return b"\x20" + bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 0xF))) + b"\x00"


# --- NBNS ------------------------------------------------------------------------------------


def test_name_query() -> None:
    payload = bytes(NBNSHeader(NAME_TRN_ID=7) / NBNSQueryRequest(QUESTION_NAME="WORKGROUP", SUFFIX=SUFFIX_1D))
    assert parse_nbns(payload) == NbnsMessage(is_response=False, name="WORKGROUP", suffix=0x1D, addresses=())


def test_positive_query_response() -> None:
    response = NBNSHeader(RESPONSE=1, OPCODE=0, QDCOUNT=0, ANCOUNT=1) / NBNSQueryResponse(
        RR_NAME="LAPTOP-1",
        SUFFIX=SUFFIX_20,
        ADDR_ENTRY=[NBNS_ADD_ENTRY(NB_ADDRESS="192.168.1.20"), NBNS_ADD_ENTRY(NB_ADDRESS="10.0.0.5")],
    )
    assert parse_nbns(bytes(response)) == NbnsMessage(True, "LAPTOP-1", 0x20, ("192.168.1.20", "10.0.0.5"))


def test_registration_request() -> None:
    request = NBNSHeader(OPCODE=5, ARCOUNT=1) / NBNSRegistrationRequest(
        QUESTION_NAME="DESKTOP-X", SUFFIX=SUFFIX_00, NB_ADDRESS="192.168.1.30"
    )
    assert parse_nbns(bytes(request)) == NbnsMessage(False, "DESKTOP-X", 0x00, ("192.168.1.30",))


def test_wildcard_and_hostile_names() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    wildcard = header + b"\x20" + b"CK" + b"AA" * 15 + b"\x00" + b"\x00\x21\x00\x01"
    assert parse_nbns(wildcard) == NbnsMessage(False, "*", 0, ())
    hostile = parse_nbns(header + _encode(b"\x1b[2J[b]x\xff", 0x20) + b"\x00\x20\x00\x01")
    assert hostile.name == "\\x1b[2J[b]x\\xff" and is_safe(hostile.name)


def test_malformed_nbns() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    cases = {
        b"\x00" * 11: "header truncated",
        struct.pack("!HHHHHH", 1, 0, 0, 0, 0, 0) + b"\x00" * 40: "no question",
        header + b"\x10" + b"A" * 16 + b"\x00\x00\x20\x00\x01": "expected 32",
        header + b"\x20" + b"Z" * 32 + b"\x00\x00\x20\x00\x01": "not first-level encoded",
        header + b"\x20" + b"A" * 20: "truncated",
        header + _encode(b"X", 0) + b"\x00": "question truncated",
    }
    for payload, match in cases.items():
        with pytest.raises(MalformedPayload, match=match):
            parse_nbns(payload)


def test_address_count_is_capped() -> None:
    entries = b"".join(b"\x00\x00" + bytes([10, 0, i // 256, i % 256]) for i in range(200))
    header = struct.pack("!HHHHHH", 1, 0x8500, 0, 1, 0, 0)
    record = _encode(b"MANY", 0) + struct.pack("!HHIH", 0x20, 1, 0, len(entries)) + entries
    assert len(parse_nbns(header + record).addresses) == MAX_ADDRESSES


def test_nbns_every_truncation() -> None:
    response = NBNSHeader(RESPONSE=1, QDCOUNT=0, ANCOUNT=1) / NBNSQueryResponse(
        RR_NAME="HOST", ADDR_ENTRY=[NBNS_ADD_ENTRY(NB_ADDRESS="192.168.1.2")]
    )
    full = bytes(response)
    for cut in range(len(full)):
        try:
            result = parse_nbns(full[:cut])
        except MalformedPayload:
            continue
        assert isinstance(result, NbnsMessage)


# --- SSDP ------------------------------------------------------------------------------------


def test_m_search() -> None:
    payload = (
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n'
        b"ST: urn:dial-multiscreen-org:service:dial:1\r\nUSER-AGENT: Google Chrome/120.0 Windows\r\n\r\n"
    )
    assert parse_ssdp(payload) == SsdpMessage(
        kind="M-SEARCH",
        server=None,
        user_agent="Google Chrome/120.0 Windows",
        location=None,
        st="urn:dial-multiscreen-org:service:dial:1",
        usn=None,
    )


def test_notify() -> None:
    payload = (
        b"NOTIFY * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\nCache-Control: max-age=1800\r\n"
        b"Location: http://192.168.1.10:49152/description.xml\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n"
        b"Server: Linux/3.14 UPnP/1.0 Sonos/70.3-35220 (ZPS9)\r\n"
        b"USN: uuid:RINCON_000E58000000::upnp:rootdevice\r\n\r\n"
    )
    assert parse_ssdp(payload) == SsdpMessage(
        kind="NOTIFY",
        server="Linux/3.14 UPnP/1.0 Sonos/70.3-35220 (ZPS9)",
        user_agent=None,
        location="http://192.168.1.10:49152/description.xml",
        st="upnp:rootdevice",
        usn="uuid:RINCON_000E58000000::upnp:rootdevice",
    )


def test_response_lf_only_and_case() -> None:
    payload = (
        b"HTTP/1.1 200 OK\nserver: Roku/12.0.0 UPnP/1.0 Roku/12.0.0\nst: roku:ecp\nbogus line\nst: other\n\n"
    )
    result = parse_ssdp(payload)
    assert result == SsdpMessage("RESPONSE", "Roku/12.0.0 UPnP/1.0 Roku/12.0.0", None, None, "roku:ecp", None)


def test_ssdp_not_ssdp() -> None:
    for payload in (b"", b"GET / HTTP/1.1\r\n", b"m-search * HTTP/1.1\r\n", b"\x00\x01garbage"):
        assert parse_ssdp(payload) is None


def test_ssdp_hostile_and_bounded() -> None:
    payload = (
        b"NOTIFY * HTTP/1.1\r\nSERVER: \x1b[5m[blink]\xff\r\nLOCATION: http://x/" + b"a" * 5000 + b"\r\n\r\n"
    )
    result = parse_ssdp(payload)
    assert result is not None
    assert result.server == "\\x1b[5m[blink]\\xff"
    assert result.location is not None and len(result.location) == 512
