"""DNS / mDNS / LLMNR payload parsing: fields, hostile names, compression abuse, truncation, captures."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRMX, DNSRRSRV

from heimdal_tui.common.text import ELLIPSIS, is_safe
from heimdal_tui.decode.app.dns import (
    MAX_RECORDS_PER_SECTION,
    RTYPE_NAMES,
    DnsMessage,
    DnsRecord,
    mdns_hostnames,
    mdns_services,
    parse_dns,
)
from heimdal_tui.decode.app.errors import MalformedPayload

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"

JOHN = "John’s iMac"


def _header(qd: int = 0, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x8400, ident: int = 0) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def _labels(*labels: bytes) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def _response() -> DNS:
    return DNS(
        id=0x1234,
        qr=1,
        rd=1,
        ra=1,
        qd=[DNSQR(qname="www.Example.com.", qtype="A")],
        an=[
            DNSRR(rrname="www.Example.com.", type="CNAME", rdata="edge.example.net.", ttl=60),
            DNSRR(rrname="edge.example.net.", type="A", rdata="93.184.216.34", ttl=300),
            DNSRR(rrname="edge.example.net.", type="AAAA", rdata="2606:2800:220:1::248", ttl=300),
        ],
        ns=[
            DNSRR(rrname="example.net.", type="NS", rdata="a.iana-servers.net.", ttl=86400),
            DNSRRMX(rrname="example.net.", exchange="mx.example.net.", preference=10, ttl=8),
        ],
        ar=[
            DNSRR(rrname="t.example.net.", type="TXT", rdata=[b"v=spf1 -all", b"second"], ttl=5),
            DNSRRSRV(rrname="_sip._tcp.example.net.", target="sip.example.net.", port=5060, ttl=7),
            DNSRR(rrname="n.example.net.", type="NULL", rdata=b"\x00\x01\x02", ttl=1),
        ],
    )


EXPECTED = DnsMessage(
    id=0x1234,
    is_response=True,
    opcode=0,
    rcode=0,
    questions=(("www.Example.com", 1),),
    answers=(
        DnsRecord("www.Example.com", 5, "edge.example.net", 60),
        DnsRecord("edge.example.net", 1, "93.184.216.34", 300),
        DnsRecord("edge.example.net", 28, "2606:2800:220:1::248", 300),
    ),
    authorities=(
        DnsRecord("example.net", 2, "a.iana-servers.net", 86400),
        DnsRecord("example.net", 15, "10 mx.example.net", 8),
    ),
    additionals=(
        DnsRecord("t.example.net", 16, "v=spf1 -all second", 5),
        DnsRecord("_sip._tcp.example.net", 33, "sip.example.net:5060", 7),
        DnsRecord("n.example.net", 10, "<3 bytes>", 1),
    ),
)


def test_response_fields_exact() -> None:
    assert parse_dns(bytes(_response())) == EXPECTED


def test_compressed_response_parses_the_same() -> None:
    plain = bytes(_response())
    compressed = bytes(_response().compress())
    assert len(compressed) < len(plain)
    assert parse_dns(compressed) == EXPECTED


def test_result_is_hashable_and_frozen() -> None:
    msg = parse_dns(bytes(_response()))
    assert hash(msg) == hash(EXPECTED)
    with pytest.raises(AttributeError):
        msg.id = 1  # type: ignore[misc]


def test_query_opcode_rcode() -> None:
    msg = parse_dns(bytes(DNS(id=7, qr=0, opcode=2, rcode=3, qd=[DNSQR(qname="a.b.", qtype=28)])))
    assert (msg.id, msg.is_response, msg.opcode, msg.rcode) == (7, False, 2, 3)
    assert msg.questions == (("a.b", 28),)
    assert msg.answers == msg.authorities == msg.additionals == ()


def test_root_name_is_empty_string() -> None:
    payload = _header(qd=1) + b"\x00" + struct.pack("!HH", 2, 1)
    assert parse_dns(payload).questions == (("", 2),)


def test_rtype_names() -> None:
    assert RTYPE_NAMES[1] == "A" and RTYPE_NAMES[28] == "AAAA" and RTYPE_NAMES[33] == "SRV"
    assert RTYPE_NAMES[65] == "HTTPS" and RTYPE_NAMES[64] == "SVCB" and RTYPE_NAMES[255] == "ANY"
    assert len(RTYPE_NAMES) == 13


def test_tcp_length_prefix_first_message_only() -> None:
    one = bytes(_response())
    other = bytes(DNS(id=9, qd=[DNSQR(qname="other.")]))
    stream = struct.pack("!H", len(one)) + one + struct.pack("!H", len(other)) + other
    assert parse_dns(stream, tcp=True) == EXPECTED
    with pytest.raises(MalformedPayload, match="length prefix"):
        parse_dns(b"\x00", tcp=True)
    with pytest.raises(MalformedPayload):
        parse_dns(struct.pack("!H", len(one)) + one[:20], tcp=True)


# --- mDNS ------------------------------------------------------------------------------------


def test_mdns_utf8_instance_name() -> None:
    name = f"{JOHN}._device-info._tcp.local.".encode()
    payload = bytes(
        DNS(
            id=0,
            qr=1,
            aa=1,
            an=[DNSRR(rrname=name, type="TXT", rdata=[b"model=iMac17,1", b"osxvers=17"], ttl=4500)],
        )
    )
    msg = parse_dns(payload)
    assert msg.answers == (
        DnsRecord(f"{JOHN}._device-info._tcp.local", 16, "model=iMac17,1 osxvers=17", 4500),
    )


def _mdns_announcement() -> bytes:
    return bytes(
        DNS(
            id=0,
            qr=1,
            aa=1,
            an=[
                DNSRR(
                    rrname="_airplay._tcp.local.",
                    type="PTR",
                    rdata="Living Room._airplay._tcp.local.",
                    ttl=4500,
                ),
                DNSRR(
                    rrname="_services._dns-sd._udp.local.",
                    type="PTR",
                    rdata="_googlecast._tcp.local.",
                    ttl=4500,
                ),
                DNSRR(
                    rrname="_printer._sub._http._tcp.local.", type="PTR", rdata="Printer._http._tcp.local."
                ),
                DNSRRSRV(rrname="Living Room._raop._tcp.local.", target="Living-Room.local.", port=7000),
                DNSRR(rrname="Living-Room.local.", type="A", rdata="192.168.1.40", ttl=120),
                DNSRR(rrname="Kitchen._hap._tcp.local.", type="TXT", rdata=[b"c#=2"]),
            ],
            ar=[
                DNSRR(rrname="Living-Room.local.", type="AAAA", rdata="fe80::1", ttl=120),
                DNSRR(rrname="router.example.com.", type="A", rdata="192.168.1.1", ttl=120),
            ],
        ).compress()
    )


def test_mdns_services() -> None:
    msg = parse_dns(_mdns_announcement())
    # The TXT record's service (_hap) is not counted; the enumeration meta-service is not a service.
    assert mdns_services(msg) == {"_airplay._tcp", "_googlecast._tcp", "_http._tcp", "_raop._tcp"}


def test_mdns_services_from_questions() -> None:
    query = DNS(
        id=0,
        qd=[
            DNSQR(qname="_ipp._tcp.local.", qtype="PTR"),
            DNSQR(qname="_Spotify-Connect._TCP.local.", qtype="PTR"),
            DNSQR(qname="MyHost.local.", qtype="A"),
            DNSQR(qname="_ipps._tcp.example.com.", qtype="PTR"),
            DNSQR(qname="_tcp.local.", qtype="PTR"),
        ],
    )
    assert mdns_services(parse_dns(bytes(query))) == {"_ipp._tcp", "_spotify-connect._tcp"}


def test_mdns_hostnames_of_a_response() -> None:
    assert mdns_hostnames(parse_dns(_mdns_announcement())) == {"Living-Room"}


def test_mdns_hostnames_ignores_known_answers_of_a_query() -> None:
    query = DNS(
        id=0,
        qr=0,
        qd=[DNSQR(qname="_airplay._tcp.local.", qtype="PTR")],
        an=[DNSRR(rrname="other-host.local.", type="A", rdata="192.168.1.9")],
    )
    msg = parse_dns(bytes(query))
    assert mdns_hostnames(msg) == set()
    assert mdns_services(msg) == {"_airplay._tcp"}


# --- hostile content -------------------------------------------------------------------------


def test_escape_sequences_and_markup_in_names() -> None:
    payload = _header(an=1) + _labels(b"\x1b[2Jevil", b"[bold]markup[/]", b"local")
    payload += struct.pack("!HHIH", 1, 1, 10, 4) + bytes([10, 0, 0, 1])
    (record,) = parse_dns(payload).answers
    assert record.name == "\\x1b[2Jevil.[bold]markup[/].local"
    assert is_safe(record.name)


def test_invalid_utf8_label_is_escaped() -> None:
    payload = _header(qd=1) + _labels(b"ab\xff\xfecd", b"\xe2\x80\xae", b"x") + struct.pack("!HH", 1, 1)
    ((name, _),) = parse_dns(payload).questions
    assert name == "ab\\xff\\xfecd.\\u202e.x"
    assert is_safe(name)


def test_name_text_is_bounded_to_255() -> None:
    labels = [b"\xff" * 63] * 3 + [b"\xff" * 60]  # 254 bytes on the wire, each byte -> 4 characters
    payload = _header(qd=1) + _labels(*labels) + struct.pack("!HH", 1, 1)
    ((name, _),) = parse_dns(payload).questions
    assert len(name) == 255 and name.endswith(ELLIPSIS)


def test_ten_kilobyte_name_is_malformed() -> None:
    payload = _header(qd=1) + _labels(*([b"a" * 63] * 160)) + struct.pack("!HH", 1, 1)
    with pytest.raises(MalformedPayload, match="longer than 255"):
        parse_dns(payload)


def test_long_name_through_pointers_is_malformed() -> None:
    # Each question adds a 63-byte label before a pointer to the previous question's name.
    payload = bytearray(_header(qd=6))
    previous = -1
    for _ in range(6):
        start = len(payload)
        payload += bytes([63]) + b"b" * 63
        payload += struct.pack("!H", 0xC000 | previous) if previous >= 0 else b"\x00"
        payload += struct.pack("!HH", 1, 1)
        previous = start
    with pytest.raises(MalformedPayload, match="longer than 255"):
        parse_dns(bytes(payload))


def test_hostile_txt_is_escaped_and_bounded() -> None:
    strings = [b"\x1b]0;pwned\x07"] + [b"x" * 255] * 20
    rdata = b"".join(bytes([len(s)]) + s for s in strings)
    payload = _header(an=1) + _labels(b"t") + struct.pack("!HHIH", 16, 1, 0, len(rdata)) + rdata
    (record,) = parse_dns(payload).answers
    assert record.value.startswith("\\x1b]0;pwned\\x07 xxx")
    assert len(record.value) <= 1024 and record.value.endswith(ELLIPSIS)


# --- compression abuse and structure errors --------------------------------------------------


def test_self_pointer_loop() -> None:
    with pytest.raises(MalformedPayload, match="pointer loop at offset 12"):
        parse_dns(_header(qd=1) + b"\xc0\x0c" + struct.pack("!HH", 1, 1))


def test_two_pointer_loop() -> None:
    with pytest.raises(MalformedPayload, match="pointer loop"):
        parse_dns(_header(qd=1) + b"\xc0\x0e\xc0\x0c" + struct.pack("!HH", 1, 1))


def test_loop_through_labels() -> None:
    # offset 12: label "a", then a pointer back to offset 12.
    with pytest.raises(MalformedPayload, match="pointer loop"):
        parse_dns(_header(qd=1) + b"\x01a\xc0\x0c" + struct.pack("!HH", 1, 1))


def test_long_pointer_chain_is_capped() -> None:
    # The question's name points at the last of 40 pointers (after the question), each pointing to
    # the one before it, the first to a root name: no loop, but too many jumps.
    chain_at = 12 + 2 + 4
    chain = bytearray(b"\x00")
    for i in range(40):
        chain += struct.pack("!H", 0xC000 | (chain_at if i == 0 else chain_at + 1 + 2 * (i - 1)))
    last = chain_at + len(chain) - 2
    payload = _header(qd=1) + struct.pack("!HHH", 0xC000 | last, 1, 1) + bytes(chain)
    with pytest.raises(MalformedPayload, match="more than 32 pointers"):
        parse_dns(payload)
    # The same chain with 20 pointers is fine.
    short_last = chain_at + 1 + 2 * 19
    ok = _header(qd=1) + struct.pack("!HHH", 0xC000 | short_last, 1, 1) + bytes(chain)
    assert parse_dns(ok).questions == (("", 1),)


def test_pointer_past_end() -> None:
    with pytest.raises(MalformedPayload, match="points past the message"):
        parse_dns(_header(qd=1) + b"\xc0\xff" + struct.pack("!HH", 1, 1))


def test_extended_label_type_rejected() -> None:
    with pytest.raises(MalformedPayload, match="label type 0x40"):
        parse_dns(_header(qd=1) + b"\x41a\x00" + struct.pack("!HH", 1, 1))


def test_bad_address_lengths() -> None:
    for rtype, size in ((1, 5), (28, 4)):
        payload = _header(an=1) + b"\x00" + struct.pack("!HHIH", rtype, 1, 0, size) + b"\x00" * size
        with pytest.raises(MalformedPayload, match="expected"):
            parse_dns(payload)


def test_name_in_rdata_must_fit_its_record() -> None:
    # CNAME with rdlength 2 whose name needs 3 bytes.
    payload = _header(an=1) + b"\x00" + struct.pack("!HHIH", 5, 1, 0, 2) + b"\x01a\x00"
    with pytest.raises(MalformedPayload, match="runs past its record data"):
        parse_dns(payload)


def test_huge_counts_in_a_small_packet() -> None:
    with pytest.raises(MalformedPayload):
        parse_dns(_header(qd=0xFFFF, an=0xFFFF, ns=0xFFFF, ar=0xFFFF) + b"\x00" * 20)


def test_records_per_section_are_capped_and_later_sections_still_read() -> None:
    answers = [DNSRR(rrname=f"h{i}.local.", type="A", rdata=f"10.0.0.{i}") for i in range(100)]
    extra = [DNSRR(rrname="last.local.", type="A", rdata="10.1.1.1")]
    msg = parse_dns(bytes(DNS(qr=1, an=answers, ar=extra)))
    assert len(msg.answers) == MAX_RECORDS_PER_SECTION
    assert msg.answers[-1].name == f"h{MAX_RECORDS_PER_SECTION - 1}.local"
    assert msg.additionals == (DnsRecord("last.local", 1, "10.1.1.1", 0),)


def test_short_header() -> None:
    with pytest.raises(MalformedPayload, match="header truncated"):
        parse_dns(b"\x00" * 11)


@pytest.mark.parametrize("compress", [False, True])
def test_every_truncation(compress: bool) -> None:
    packet = _response()
    full = bytes(packet.compress() if compress else packet)
    for cut in range(len(full)):
        try:
            result = parse_dns(full[:cut])
        except MalformedPayload:
            continue
        assert isinstance(result, DnsMessage)
    mdns = _mdns_announcement()
    for cut in range(len(mdns)):
        try:
            result = parse_dns(mdns[:cut])
        except MalformedPayload:
            continue
        assert isinstance(result, DnsMessage)


# --- real captures ---------------------------------------------------------------------------


def _udp_payloads(rel: str) -> list[bytes]:
    path = PCAPS / rel
    if not path.exists():
        pytest.skip(f"capture {path} is not present")
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    return [bytes(pkt[UDP].payload) for pkt in rdpcap(str(path)) if UDP in pkt]


@pytest.mark.shared
def test_capture_mdns_no_assoc() -> None:
    messages = [parse_dns(p) for p in _udp_payloads("zeek/testing/btest/Traces/dns/mdns-no-assoc.pcap")]
    assert [m.questions for m in messages if not m.is_response] == [
        (("initial-query-a.local", 1),),
        (("initial-query-aaaa.local", 28),),
        (("v6-initial.local", 28),),
    ]
    answers = [r for m in messages for r in m.answers]
    assert DnsRecord("unrelated-reply-a.local", 1, "192.168.0.2", 120) in answers
    assert DnsRecord("unrelated-reply-aaaa.local", 28, "fe80::200:deff:fead:beef", 120) in answers
    hosts = set().union(*(mdns_hostnames(m) for m in messages))
    assert hosts == {"unrelated-reply-a", "unrelated-reply-aaaa", "v6-unrelated"}


@pytest.mark.shared
def test_capture_mdns_utf8_name() -> None:
    # The mDNS packets of this capture are not fragmented (only the ICMPv6 echoes are).
    rel = "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-9/frag-9.pcap"
    messages = [parse_dns(p) for p in _udp_payloads(rel)]
    names = {r.name for m in messages for r in m.answers}
    assert f"{JOHN}._device-info._tcp.local" in names
    services = set().union(*(mdns_services(m) for m in messages))
    assert {"_companion-link._tcp", "_apple-mobdev2._tcp"} <= services
