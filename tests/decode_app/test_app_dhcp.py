"""DHCPv4 payload parsing: fields, options, hostile strings, truncation, captures."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from heimdal_tui.common.text import ELLIPSIS, is_safe
from heimdal_tui.decode.app.dhcp import DHCP_MSG_TYPES, DhcpMessage, parse_dhcp
from heimdal_tui.decode.app.errors import MalformedPayload

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"

MAC = "3c:22:fb:12:34:56"
MAC_BYTES = bytes.fromhex(MAC.replace(":", ""))


def _request(*options: object, htype: int = 1, hlen: int = 6) -> bytes:
    bootp = BOOTP(op=1, htype=htype, hlen=hlen, xid=0xDEADBEEF, chaddr=MAC_BYTES + b"\x00" * 10)
    return bytes(bootp / DHCP(options=[*options, "end"]))


FULL = _request(
    ("message-type", "request"),
    ("hostname", b"Janes-iPhone"),
    ("vendor_class_id", b"android-dhcp-13"),
    ("requested_addr", "192.168.1.50"),
    ("server_id", "192.168.1.1"),
    ("param_req_list", [1, 3, 6, 15, 119, 252]),
    ("domain", b"home.lan"),
    ("lease_time", 86400),
    ("client_FQDN", b"\x00\x00\x00janes-phone.home.lan"),
)


def test_fields_exact() -> None:
    assert parse_dhcp(FULL) == DhcpMessage(
        op=1,
        msg_type=3,
        xid=0xDEADBEEF,
        client_mac=MAC,
        ciaddr="0.0.0.0",
        yiaddr="0.0.0.0",
        hostname="Janes-iPhone",
        vendor_class="android-dhcp-13",
        requested_ip="192.168.1.50",
        server_id="192.168.1.1",
        param_list=(1, 3, 6, 15, 119, 252),
        domain="home.lan",
        client_fqdn="janes-phone.home.lan",
        lease_time=86400,
    )


def test_ack_addresses() -> None:
    ack = bytes(
        BOOTP(op=2, xid=5, ciaddr="10.0.0.7", yiaddr="10.0.0.8", chaddr=MAC_BYTES)
        / DHCP(options=[("message-type", "ack"), ("lease_time", 600), "end"])
    )
    msg = parse_dhcp(ack)
    assert (msg.op, msg.msg_type, msg.ciaddr, msg.yiaddr, msg.lease_time) == (
        2,
        5,
        "10.0.0.7",
        "10.0.0.8",
        600,
    )
    assert msg.hostname is msg.vendor_class is msg.requested_ip is msg.server_id is None
    assert msg.domain is msg.client_fqdn is None and msg.param_list == ()


def test_msg_types() -> None:
    assert DHCP_MSG_TYPES == {
        1: "DISCOVER",
        2: "OFFER",
        3: "REQUEST",
        4: "DECLINE",
        5: "ACK",
        6: "NAK",
        7: "RELEASE",
        8: "INFORM",
    }


def test_no_message_type_is_plain_bootp_with_cookie() -> None:
    assert parse_dhcp(_request(("hostname", b"h"))).msg_type is None


def test_client_mac_only_for_ethernet() -> None:
    assert parse_dhcp(_request(("message-type", "discover"), htype=6)).client_mac == ""
    assert parse_dhcp(_request(("message-type", "discover"), hlen=16)).client_mac == ""


def test_fqdn_wire_format() -> None:
    wire = b"\x05" + b"\x00\x00" + b"\x06laptop\x04corp\x00"
    assert parse_dhcp(_request(("client_FQDN", wire))).client_fqdn == "laptop.corp"
    assert parse_dhcp(_request(("client_FQDN", b"\x00\x00\x00"))).client_fqdn is None
    with pytest.raises(MalformedPayload, match="option 81"):
        parse_dhcp(_request(("client_FQDN", b"\x04\x00\x00\x09short")))
    with pytest.raises(MalformedPayload, match="option 81"):
        parse_dhcp(_request(("client_FQDN", b"\x00")))


def test_hostile_hostname_and_vendor_class() -> None:
    payload = _request(
        ("hostname", b"\x1b[31mred\x1b[0m[bold]x[/]\x00"),
        ("vendor_class_id", b"\xff\xfeMSFT\x9b5.0"),
    )
    msg = parse_dhcp(payload)
    assert msg.hostname == "\\x1b[31mred\\x1b[0m[bold]x[/]"
    assert msg.vendor_class == "\\xff\\xfeMSFT\\x9b5.0"
    assert is_safe(msg.hostname) and is_safe(msg.vendor_class)


def test_long_repeated_option_is_concatenated_and_bounded() -> None:
    chunk = b"h" * 255
    msg = parse_dhcp(_request(*[("hostname", chunk)] * 40))
    assert msg.hostname is not None and len(msg.hostname) == 255 and msg.hostname.endswith(ELLIPSIS)
    two = parse_dhcp(_request(("hostname", b"abc"), ("hostname", b"def")))
    assert two.hostname == "abcdef"


def test_pad_options_and_missing_end() -> None:
    payload = bytes(BOOTP(chaddr=MAC_BYTES)) + b"\x63\x82\x53\x63" + b"\x00" * 30 + b"\x35\x01\x01\x0c\x01h"
    msg = parse_dhcp(payload)
    assert (msg.msg_type, msg.hostname) == (1, "h")


def test_options_after_end_ignored() -> None:
    payload = bytes(BOOTP(chaddr=MAC_BYTES)) + b"\x63\x82\x53\x63" + b"\x35\x01\x02\xff\x0c\x05junk!"
    assert parse_dhcp(payload).hostname is None


def test_bad_cookie_and_short_payload() -> None:
    with pytest.raises(MalformedPayload, match="magic cookie"):
        parse_dhcp(bytes(BOOTP()) + b"\x00\x00\x00\x00")
    with pytest.raises(MalformedPayload, match="truncated"):
        parse_dhcp(bytes(BOOTP())[:100])
    with pytest.raises(MalformedPayload, match="truncated"):
        parse_dhcp(b"")


def test_wrong_option_sizes() -> None:
    base = bytes(BOOTP()) + b"\x63\x82\x53\x63"
    for option, match in (
        (b"\x32\x03\x01\x02\x03", "option 50"),
        (b"\x36\x05\x01\x02\x03\x04\x05", "option 54"),
        (b"\x33\x02\x00\x01", "option 51"),
        (b"\x35\x02\x01\x01", "option 53"),
    ):
        with pytest.raises(MalformedPayload, match=match):
            parse_dhcp(base + option + b"\xff")


def test_option_overrunning_payload() -> None:
    base = bytes(BOOTP()) + b"\x63\x82\x53\x63"
    with pytest.raises(MalformedPayload, match="option 12 at offset 240 claims 200 bytes"):
        parse_dhcp(base + b"\x0c\xc8abc")
    with pytest.raises(MalformedPayload, match="length truncated"):
        parse_dhcp(base + b"\x0c")


def test_option_count_is_capped() -> None:
    # 2000 one-byte options: parsing stops after MAX_OPTIONS, the hostname behind them is never seen.
    base = bytes(BOOTP()) + b"\x63\x82\x53\x63"
    msg = parse_dhcp(base + b"\x2b\x00" * 2000 + b"\x0c\x01h\xff")
    assert msg.hostname is None


def test_every_truncation() -> None:
    for cut in range(len(FULL)):
        try:
            result = parse_dhcp(FULL[:cut])
        except MalformedPayload:
            continue
        assert isinstance(result, DhcpMessage)
        assert cut >= 240


def _udp_payloads(rel: str) -> list[bytes]:
    path = PCAPS / rel
    if not path.exists():
        pytest.skip(f"capture {path} is not present")
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    return [bytes(pkt[UDP].payload) for pkt in rdpcap(str(path)) if UDP in pkt]


@pytest.mark.shared
def test_capture_zeek_dhcp() -> None:
    messages = [parse_dhcp(p) for p in _udp_payloads("zeek/testing/btest/Traces/dhcp/dhcp.pcap")]
    assert {m.client_mac for m in messages} == {"90:b1:1c:99:49:29"}
    assert [DHCP_MSG_TYPES[m.msg_type] for m in messages if m.msg_type] == [
        "DISCOVER",
        "OFFER",
        "REQUEST",
        "NAK",
        "REQUEST",
        "ACK",
        "DECLINE",
        "RELEASE",
        "INFORM",
    ]
    assert {m.hostname for m in messages if m.op == 1} == {"btest.is.cool", None}
    ack = next(m for m in messages if m.msg_type == 5)
    assert (ack.yiaddr, ack.server_id, ack.lease_time, ack.domain) == (
        "128.2.6.189",
        "128.2.6.152",
        900,
        "cmu.edu",
    )


@pytest.mark.shared
def test_capture_vendor_class_msft() -> None:
    (payload,) = _udp_payloads("suricata-verify/tests/dhcp-eve-extended-option-60/input.pcap")
    msg = parse_dhcp(payload)
    assert msg.vendor_class == "MSFT 5.0"
    assert (msg.client_mac, msg.hostname, msg.client_fqdn) == (
        "28:cf:da:dc:8d:76",
        "NicksMacBook",
        "NicksMacBook",
    )
    assert msg.param_list == (1, 15, 3, 6, 44, 46, 47, 31, 33, 121, 249, 43)
    assert msg.requested_ip == "192.168.1.111"
