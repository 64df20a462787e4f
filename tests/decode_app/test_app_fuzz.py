"""Routing of parse_app, and fuzzing: every parser, on any bytes, returns or raises MalformedPayload only."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRSRV
from scapy.layers.netbios import NBNS_ADD_ENTRY, NBNSHeader, NBNSQueryRequest, NBNSQueryResponse

from heimdal_tui.common.text import is_safe
from heimdal_tui.decode.app.dhcp import DhcpMessage, parse_dhcp
from heimdal_tui.decode.app.dispatch import APP_TCP_PORTS, APP_UDP_PORTS, parse_app
from heimdal_tui.decode.app.dns import DnsMessage, mdns_hostnames, mdns_services, parse_dns
from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app.http import HttpRequest, parse_http_request
from heimdal_tui.decode.app.netbios import NbnsMessage, parse_nbns
from heimdal_tui.decode.app.ssdp import SsdpMessage, parse_ssdp
from heimdal_tui.decode.app.tls import TlsClientHello, parse_client_hello

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tls_hello(name: bytes) -> bytes:
    sni = struct.pack("!BH", 0, len(name)) + name
    sni_ext = struct.pack("!HH", 0, len(sni) + 2) + struct.pack("!H", len(sni)) + sni
    alpn = b"\x02h2\x08http/1.1"
    alpn_ext = struct.pack("!HHH", 16, len(alpn) + 2, len(alpn)) + alpn
    versions_ext = struct.pack("!HHB", 43, 5, 4) + b"\x03\x04\x03\x03"
    exts = versions_ext + alpn_ext + sni_ext
    body = b"\x03\x03" + b"\x01" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 0x16, 0x0301, len(message)) + message


DNS_SEED = bytes(
    DNS(
        id=1,
        qr=1,
        qd=[DNSQR(qname="_airplay._tcp.local.", qtype="PTR")],
        an=[
            DNSRR(rrname="_airplay._tcp.local.", type="PTR", rdata="TV._airplay._tcp.local."),
            DNSRRSRV(rrname="TV._airplay._tcp.local.", target="tv.local.", port=7000),
            DNSRR(rrname="TV._airplay._tcp.local.", type="TXT", rdata=[b"model=AppleTV6,2"]),
        ],
        ar=[DNSRR(rrname="tv.local.", type="A", rdata="192.168.1.5")],
    ).compress()
)
DHCP_SEED = bytes(
    BOOTP(op=1, chaddr=b"\x3c\x22\xfb\x12\x34\x56")
    / DHCP(
        options=[
            ("message-type", "request"),
            ("hostname", b"host"),
            ("vendor_class_id", b"MSFT 5.0"),
            ("param_req_list", [1, 3, 6]),
            ("client_FQDN", b"\x04\x00\x00\x04host\x03lan\x00"),
            "end",
        ]
    )
)
TLS_SEED = _tls_hello(b"www.example.com")
HTTP_SEED = b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (SMART-TV; Tizen 6.0)\r\n\r\n"
NBNS_SEED = bytes(
    NBNSHeader(RESPONSE=1, QDCOUNT=0, ANCOUNT=1)
    / NBNSQueryResponse(RR_NAME="HOST", ADDR_ENTRY=[NBNS_ADD_ENTRY(NB_ADDRESS="192.168.1.2")])
)
NBNS_QUERY_SEED = bytes(NBNSHeader() / NBNSQueryRequest(QUESTION_NAME="WORKGROUP"))
SSDP_SEED = (
    b"NOTIFY * HTTP/1.1\r\nLOCATION: http://x/d.xml\r\nNT: upnp:rootdevice\r\nSERVER: Linux UPnP/1.0\r\n\r\n"
)
SEEDS = [DNS_SEED, DHCP_SEED, TLS_SEED, HTTP_SEED, NBNS_SEED, NBNS_QUERY_SEED, SSDP_SEED]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed message with a few bytes changed, inserted or removed and possibly cut short."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        index = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "set" and data:
            data[index] = draw(st.integers(0, 255))
        elif op == "insert":
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[index]
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


payloads = st.one_of(st.binary(max_size=1500), mutated(SEEDS))


def _check_strings(value: Any) -> None:
    """Every string in a result is safe and bounded."""
    if isinstance(value, str):
        assert is_safe(value) and len(value) <= 1024
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            _check_strings(item)
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            _check_strings(getattr(value, field.name))


def _run(parser: Callable[[bytes], Any], payload: bytes) -> Any:
    try:
        result = parser(payload)
    except MalformedPayload as exc:
        assert str(exc)
        return None
    _check_strings(result)
    if result is not None:
        hash(result)
    return result


@FUZZ
@given(payloads)
def test_fuzz_dns(payload: bytes) -> None:
    result = _run(parse_dns, payload)
    if result is not None:
        assert isinstance(result, DnsMessage)
        _check_strings(mdns_services(result))
        _check_strings(mdns_hostnames(result))
    _run(lambda p: parse_dns(p, tcp=True), payload)


@FUZZ
@given(payloads)
def test_fuzz_dhcp(payload: bytes) -> None:
    assert _run(parse_dhcp, payload) is None or isinstance(parse_dhcp(payload), DhcpMessage)


@FUZZ
@given(st.one_of(payloads, st.binary(max_size=600).map(lambda b: b"\x16\x03\x01" + b)))
def test_fuzz_tls(payload: bytes) -> None:
    result = _run(parse_client_hello, payload)
    assert result is None or isinstance(result, TlsClientHello)


@FUZZ
@given(st.one_of(payloads, st.binary(max_size=600).map(lambda b: b"GET " + b)))
def test_fuzz_http(payload: bytes) -> None:
    result = _run(parse_http_request, payload)
    assert result is None or isinstance(result, HttpRequest)


@FUZZ
@given(payloads)
def test_fuzz_nbns(payload: bytes) -> None:
    result = _run(parse_nbns, payload)
    assert result is None or isinstance(result, NbnsMessage)


@FUZZ
@given(st.one_of(payloads, st.binary(max_size=600).map(lambda b: b"NOTIFY " + b)))
def test_fuzz_ssdp(payload: bytes) -> None:
    result = _run(parse_ssdp, payload)
    assert result is None or isinstance(result, SsdpMessage)


ports = st.one_of(st.sampled_from(sorted(APP_UDP_PORTS | {80, 443, 8080, 0, 65535})), st.integers(0, 65535))


@FUZZ
@given(st.sampled_from([6, 17, 1, 58]), ports, ports, payloads)
def test_fuzz_parse_app(proto: int, sport: int, dport: int, payload: bytes) -> None:
    _run(lambda p: parse_app(proto, sport, dport, p), payload)


# --- routing ---------------------------------------------------------------------------------


def test_port_sets() -> None:
    assert frozenset({53, 5353, 5355, 67, 68, 137, 1900}) == APP_UDP_PORTS
    assert frozenset({53}) == APP_TCP_PORTS


@pytest.mark.parametrize("port", [53, 5353, 5355])
def test_udp_dns_ports_either_side(port: int) -> None:
    assert isinstance(parse_app(17, 40000, port, DNS_SEED), DnsMessage)
    assert isinstance(parse_app(17, port, 40000, DNS_SEED), DnsMessage)


def test_tcp_dns_has_length_prefix() -> None:
    framed = struct.pack("!H", len(DNS_SEED)) + DNS_SEED
    assert parse_app(6, 51000, 53, framed) == parse_dns(DNS_SEED)
    with pytest.raises(MalformedPayload):
        parse_app(6, 53, 51000, DNS_SEED[:1])


def test_udp_routes() -> None:
    assert isinstance(parse_app(17, 68, 67, DHCP_SEED), DhcpMessage)
    assert isinstance(parse_app(17, 67, 68, DHCP_SEED), DhcpMessage)
    assert isinstance(parse_app(17, 137, 137, NBNS_SEED), NbnsMessage)
    assert isinstance(parse_app(17, 50000, 1900, SSDP_SEED), SsdpMessage)
    assert parse_app(17, 50000, 1900, b"garbage") is None
    assert parse_app(17, 40000, 40001, DNS_SEED) is None
    assert parse_app(17, 40000, 443, TLS_SEED) is None  # QUIC is not parsed


def test_tcp_content_routes() -> None:
    hello = parse_app(6, 50000, 8443, TLS_SEED)
    assert isinstance(hello, TlsClientHello) and hello.sni == "www.example.com"
    assert isinstance(parse_app(6, 50000, 8080, HTTP_SEED), HttpRequest)
    assert parse_app(6, 443, 50000, b"\x16\x03\x03\x00\x04\x02\x00\x00\x00") is None  # ServerHello
    assert parse_app(6, 50000, 22, b"SSH-2.0-OpenSSH_9.6\r\n") is None
    assert parse_app(6, 50000, 80, b"") is None


def test_malformed_propagates() -> None:
    with pytest.raises(MalformedPayload):
        parse_app(17, 5353, 5353, b"\x00\x01")
    with pytest.raises(MalformedPayload):
        parse_app(6, 50000, 80, b"GET / HTTX\r\n\r\n")


def test_buffer_types() -> None:
    assert parse_app(6, 50000, 443, memoryview(TLS_SEED)) == parse_app(6, 50000, 443, TLS_SEED)
    assert parse_app(17, 5353, 5353, bytearray(DNS_SEED)) == parse_dns(DNS_SEED)


def test_other_protocols() -> None:
    assert parse_app(1, 53, 53, DNS_SEED) is None
    assert parse_app(58, 0, 0, DNS_SEED) is None
