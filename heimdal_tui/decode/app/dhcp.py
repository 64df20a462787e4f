"""DHCPv4 messages (RFC 2131, RFC 2132): the fields that say who a client is.

Options are read until the end option (255) or the end of the payload; an option repeated in the
message is concatenated (RFC 3396). At most :data:`MAX_OPTIONS` options are read. Option overload
(52) is ignored: options stored in ``sname``/``file`` are not read.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from heimdal_tui.common.text import safe_text
from heimdal_tui.decode.app.errors import MalformedPayload

__all__ = ["DHCP_MSG_TYPES", "MAX_OPTIONS", "DhcpMessage", "parse_dhcp"]

DHCP_MSG_TYPES: dict[int, str] = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}

MAX_OPTIONS = 255
MAGIC_COOKIE = 0x63825363
BOOTP_HEADER_LEN = 236

_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s")
_U32 = struct.Struct("!I")

_OPT_HOSTNAME = 12
_OPT_DOMAIN = 15
_OPT_REQUESTED_IP = 50
_OPT_LEASE_TIME = 51
_OPT_MSG_TYPE = 53
_OPT_SERVER_ID = 54
_OPT_PARAM_LIST = 55
_OPT_VENDOR_CLASS = 60
_OPT_CLIENT_FQDN = 81


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    op: int
    msg_type: int | None
    xid: int
    client_mac: str
    ciaddr: str
    yiaddr: str
    hostname: str | None
    vendor_class: str | None
    requested_ip: str | None
    server_id: str | None
    param_list: tuple[int, ...]
    domain: str | None
    client_fqdn: str | None
    lease_time: int | None


def _read_options(payload: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    n = len(payload)
    pos = BOOTP_HEADER_LEN + 4
    count = 0
    while pos < n and count < MAX_OPTIONS:
        code = payload[pos]
        if code == 0:
            pos += 1
            continue
        if code == 255:
            break
        if pos + 1 >= n:
            raise MalformedPayload(f"DHCP option {code} length truncated at offset {pos}")
        length = payload[pos + 1]
        end = pos + 2 + length
        if end > n:
            raise MalformedPayload(
                f"DHCP option {code} at offset {pos} claims {length} bytes, {n - pos - 2} present"
            )
        value = payload[pos + 2 : end]
        options[code] = options[code] + value if code in options else value
        pos = end
        count += 1
    return options


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    return safe_text(value.rstrip(b"\x00"))


def _ipv4(code: int, value: bytes | None) -> str | None:
    if value is None:
        return None
    if len(value) != 4:
        raise MalformedPayload(f"DHCP option {code} has {len(value)} bytes, expected 4")
    return socket.inet_ntop(socket.AF_INET, value)


def _fqdn_name(value: bytes) -> str | None:
    """The domain name of a Client FQDN option (RFC 4702): wire format when the E flag is set."""
    if len(value) < 3:
        raise MalformedPayload(f"DHCP option 81 has {len(value)} bytes, expected at least 3")
    flags, data = value[0], value[3:]
    if flags & 0x04:
        labels: list[str] = []
        pos = 0
        while pos < len(data):
            length = data[pos]
            if length == 0:
                break
            if length & 0xC0:
                raise MalformedPayload(f"DHCP option 81 has a bad label length 0x{length:02x}")
            if pos + 1 + length > len(data):
                raise MalformedPayload("DHCP option 81 name label truncated")
            labels.append(data[pos + 1 : pos + 1 + length].decode("utf-8", errors="backslashreplace"))
            pos += 1 + length
        name = safe_text(".".join(labels))
    else:
        name = safe_text(data.rstrip(b"\x00"))
    name = name.removesuffix(".")
    return name or None


def parse_dhcp(payload: bytes) -> DhcpMessage:
    """The DHCP message in a UDP payload (port 67/68); :class:`MalformedPayload` if it is not one."""
    payload = bytes(payload)
    if len(payload) < BOOTP_HEADER_LEN + 4:
        raise MalformedPayload(f"DHCP message truncated: {len(payload)} bytes, expected at least 240")
    op, htype, hlen, _hops, xid, _secs, _flags, ciaddr, yiaddr, _siaddr, _giaddr, chaddr = (
        _HEADER.unpack_from(payload, 0)
    )
    (cookie,) = _U32.unpack_from(payload, BOOTP_HEADER_LEN)
    if cookie != MAGIC_COOKIE:
        raise MalformedPayload(f"DHCP magic cookie is 0x{cookie:08x}, expected 0x{MAGIC_COOKIE:08x}")
    options = _read_options(payload)

    msg_type_raw = options.get(_OPT_MSG_TYPE)
    if msg_type_raw is not None and len(msg_type_raw) != 1:
        raise MalformedPayload(f"DHCP option 53 has {len(msg_type_raw)} bytes, expected 1")
    lease_raw = options.get(_OPT_LEASE_TIME)
    if lease_raw is not None and len(lease_raw) != 4:
        raise MalformedPayload(f"DHCP option 51 has {len(lease_raw)} bytes, expected 4")
    fqdn_raw = options.get(_OPT_CLIENT_FQDN)

    return DhcpMessage(
        op=op,
        msg_type=msg_type_raw[0] if msg_type_raw is not None else None,
        xid=xid,
        client_mac=chaddr[:6].hex(":") if htype == 1 and hlen == 6 else "",
        ciaddr=socket.inet_ntop(socket.AF_INET, ciaddr),
        yiaddr=socket.inet_ntop(socket.AF_INET, yiaddr),
        hostname=_text(options.get(_OPT_HOSTNAME)),
        vendor_class=_text(options.get(_OPT_VENDOR_CLASS)),
        requested_ip=_ipv4(_OPT_REQUESTED_IP, options.get(_OPT_REQUESTED_IP)),
        server_id=_ipv4(_OPT_SERVER_ID, options.get(_OPT_SERVER_ID)),
        param_list=tuple(options.get(_OPT_PARAM_LIST, b"")[:255]),
        domain=_text(options.get(_OPT_DOMAIN)),
        client_fqdn=_fqdn_name(fqdn_raw) if fqdn_raw is not None else None,
        lease_time=_U32.unpack(lease_raw)[0] if lease_raw is not None else None,
    )
