"""Which application parser reads a payload, by transport, ports and first bytes."""

from __future__ import annotations

from collections.abc import Callable

from heimdal_tui.decode.app.dhcp import DhcpMessage, parse_dhcp
from heimdal_tui.decode.app.dns import DnsMessage, parse_dns
from heimdal_tui.decode.app.http import HTTP_METHOD_PREFIXES, HttpRequest, parse_http_request
from heimdal_tui.decode.app.netbios import NbnsMessage, parse_nbns
from heimdal_tui.decode.app.ssdp import SsdpMessage, parse_ssdp
from heimdal_tui.decode.app.tls import TlsClientHello, parse_client_hello

__all__ = ["APP_TCP_PORTS", "APP_UDP_PORTS", "AppResult", "parse_app", "udp_parser"]

AppResult = DnsMessage | DhcpMessage | TlsClientHello | HttpRequest | NbnsMessage | SsdpMessage

PROTO_TCP = 6
PROTO_UDP = 17

_DNS_UDP_PORTS = frozenset({53, 5353, 5355})  # DNS, mDNS, LLMNR: all in DNS message format
_DHCP_PORTS = frozenset({67, 68})
_NBNS_PORT = 137
_SSDP_PORT = 1900

# For a vectorized prefilter: UDP packets worth a parser call have one of these ports on either side.
APP_UDP_PORTS = frozenset({53, 5353, 5355, 67, 68, 137, 1900})
# TCP ports routed by port; TLS and HTTP are recognised by content on any TCP port.
APP_TCP_PORTS = frozenset({53})

_TLS_HANDSHAKE = 0x16
_HTTP_FIRST_BYTES = frozenset(prefix[0] for prefix in HTTP_METHOD_PREFIXES)


def udp_parser(sport: int, dport: int) -> str | None:
    """Which parser reads a UDP payload between these ports: "dns", "dhcp", "nbns", "ssdp" or None."""
    if sport in _DNS_UDP_PORTS or dport in _DNS_UDP_PORTS:
        return "dns"
    if sport in _DHCP_PORTS or dport in _DHCP_PORTS:
        return "dhcp"
    if _NBNS_PORT in (sport, dport):
        return "nbns"
    if _SSDP_PORT in (sport, dport):
        return "ssdp"
    return None


_UDP_PARSERS: dict[str, Callable[[bytes], AppResult | None]] = {
    "dns": parse_dns,
    "dhcp": parse_dhcp,
    "nbns": parse_nbns,
    "ssdp": parse_ssdp,
}


def parse_app(
    proto: int, sport: int, dport: int, payload: bytes | bytearray | memoryview
) -> AppResult | None:
    """The application message in a TCP (6) or UDP (17) payload, or None when no parser applies.

    UDP 53/5353/5355 is DNS, 67/68 DHCP, 137 NBNS and 1900 SSDP (either port, in that order of
    preference); TCP 53 is DNS with its length prefix; other TCP payloads are tried as a TLS ClientHello
    (first byte 0x16) or an HTTP request (first bytes a method). Raises :class:`MalformedPayload` when
    the chosen parser finds the payload malformed. An empty payload is None.
    """
    if not payload:
        return None
    if not isinstance(payload, bytes):
        payload = bytes(payload)  # a memoryview or bytearray slice of a capture buffer
    if proto == PROTO_UDP:
        parser = udp_parser(sport, dport)
        if parser is None:
            return None
        return _UDP_PARSERS[parser](payload)
    if proto == PROTO_TCP:
        if sport in APP_TCP_PORTS or dport in APP_TCP_PORTS:
            return parse_dns(payload, tcp=True)
        first = payload[0]
        if first == _TLS_HANDSHAKE:
            return parse_client_hello(payload)
        if first in _HTTP_FIRST_BYTES and payload.startswith(HTTP_METHOD_PREFIXES):
            return parse_http_request(payload)
    return None
