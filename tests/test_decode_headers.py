"""Bulk header decoding against scapy's own dissection, on crafted and real frames."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from scapy.all import ARP, DNS, DNSQR, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, IPv6, Raw
from scapy.layers.inet6 import IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux

from heimdal_tui.capture.frames import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW, FrameBatch
from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.decode.headers import ETH_ARP, decode_headers
from heimdal_tui.devices.locality import address_text, mac_text

from .conftest import shared_pcap

MAC_A = "02:00:00:00:00:0a"
MAC_B = "3c:22:fb:00:00:0b"


def _batch(packets, linktype=LINKTYPE_ETHERNET, snap=None):
    frames = []
    for i, p in enumerate(packets):
        raw = bytes(p)
        frames.append((1000.0 + i, raw[:snap] if snap else raw, len(raw)))
    return FrameBatch.from_frames(frames, linktype)


def test_ethernet_ipv4_tcp_fields_match_the_packet():
    pkt = (
        Ether(src=MAC_A, dst=MAC_B)
        / IP(src="192.168.1.5", dst="93.184.216.34", ttl=61)
        / TCP(sport=51000, dport=443, flags="PA")
        / Raw(b"x" * 100)
    )
    d = decode_headers(_batch([pkt]))
    assert len(d) == 1 and not d.errors
    assert mac_text(int(d.src_mac[0])) == MAC_A and mac_text(int(d.dst_mac[0])) == MAC_B
    assert address_text(int(d.src_hi[0]), int(d.src_lo[0])) == "192.168.1.5"
    assert address_text(int(d.dst_hi[0]), int(d.dst_lo[0])) == "93.184.216.34"
    assert (d.proto[0], d.sport[0], d.dport[0], d.tcp_flags[0], d.ttl[0]) == (6, 51000, 443, 0x18, 61)
    assert d.payload_len[0] == 100 and d.payload_wire_len[0] == 100
    assert d.payload(0) == b"x" * 100
    assert d.ip_len[0] == 140


def test_vlan_tags_are_skipped_and_the_outer_id_kept():
    pkt = (
        Ether(src=MAC_A)
        / Dot1Q(vlan=42)
        / Dot1Q(vlan=7)
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / UDP(sport=5000, dport=53)
        / DNS(qd=DNSQR(qname="example.com"))
    )
    d = decode_headers(_batch([pkt]))
    assert d.vlan[0] == 42
    assert (d.proto[0], d.sport[0], d.dport[0]) == (17, 5000, 53)
    assert d.payload(0) == bytes(pkt[DNS])


def test_ipv6_extension_headers_and_icmpv6():
    pkt = (
        Ether(src=MAC_A)
        / IPv6(src="fe80::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / UDP(sport=546, dport=547)
        / Raw(b"abc")
    )
    echo = Ether(src=MAC_A) / IPv6(src="fd00::5", dst="fd00::6", hlim=9) / ICMPv6EchoRequest()
    d = decode_headers(_batch([pkt, echo]))
    assert address_text(int(d.src_hi[0]), int(d.src_lo[0])) == "fe80::1"
    assert (d.proto[0], d.sport[0], d.dport[0], d.payload(0)) == (17, 546, 547, b"abc")
    assert (d.proto[1], d.sport[1], d.dport[1], d.ttl[1]) == (58, 128, 0, 9)


def test_non_first_fragments_carry_no_ports():
    whole = IP(src="10.0.0.1", dst="10.0.0.2", id=7) / UDP(sport=1111, dport=2222) / Raw(b"z" * 3000)
    from scapy.all import fragment

    frags = [Ether(src=MAC_A) / f for f in fragment(whole, fragsize=1000)]
    v6 = (
        Ether(src=MAC_A)
        / IPv6(src="fd00::1", dst="fd00::2")
        / IPv6ExtHdrFragment(offset=10, m=0)
        / Raw(b"q" * 16)
    )
    d = decode_headers(_batch([*frags, v6]))
    assert len(d) == len(frags) + 1
    assert (d.sport[0], d.dport[0]) == (1111, 2222)
    assert (d.sport[1:] == -1).all()


def test_arp_fields():
    pkt = Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=2, hwsrc=MAC_A, psrc="192.168.1.1", hwdst=MAC_B, pdst="192.168.1.7"
    )
    d = decode_headers(_batch([pkt]))
    assert d.eth_type[0] == ETH_ARP and d.arp_op[0] == 2
    assert mac_text(int(d.arp_sha[0])) == MAC_A and mac_text(int(d.arp_tha[0])) == MAC_B
    assert str(ipaddress.IPv4Address(int(d.arp_spa[0]))) == "192.168.1.1"
    assert str(ipaddress.IPv4Address(int(d.arp_tpa[0]))) == "192.168.1.7"


def test_linux_cooked_and_raw_ip_link_types():
    sll = (
        CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=bytes.fromhex("020000000009") + b"\0\0")
        / IP(src="10.1.1.1", dst="8.8.8.8")
        / ICMP(type=8)
    )
    d = decode_headers(_batch([sll], LINKTYPE_LINUX_SLL))
    assert mac_text(int(d.src_mac[0])) == "02:00:00:00:00:09"
    assert (d.proto[0], d.sport[0], d.dport[0]) == (1, 8, 0)
    raw = IP(src="10.1.1.1", dst="10.1.1.2") / TCP(sport=1, dport=2, flags="S")
    d = decode_headers(_batch([raw], LINKTYPE_RAW))
    assert d.src_mac[0] == 0 and d.tcp_flags[0] == 0x02


def test_ethernet_padding_is_not_payload_and_snaplen_cuts_only_the_captured_part():
    tiny = Ether(src=MAC_A) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, flags="A")
    padded = bytes(tiny) + b"\0" * 6  # Ethernet minimum frame padding
    big = Ether(src=MAC_A) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=3, dport=4) / Raw(b"p" * 1000)
    batch = FrameBatch.from_frames([(1.0, padded, len(padded)), (2.0, bytes(big)[:96], len(big))])
    d = decode_headers(batch)
    assert d.payload_wire_len[0] == 0 and d.payload_len[0] == 0
    assert d.payload_wire_len[1] == 1000 and d.payload_len[1] == 96 - 42
    assert d.wire_len[1] == len(big)


@pytest.mark.parametrize("cut", range(0, 54))
def test_truncated_headers_are_counted_and_dropped_never_raised(cut):
    pkt = Ether(src=MAC_A) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2)
    raw = bytes(pkt)[:cut]
    good = bytes(pkt)
    d = decode_headers(FrameBatch.from_frames([(1.0, raw, 60), (2.0, good, len(good))]))
    # The good frame always survives; the cut one only when the ports and flags survived (the
    # first 14 bytes of the TCP header: a snaplen may cut options, the header is still usable).
    assert d.frame[-1] == 1
    if cut < 14 + 20 + 14:
        assert len(d) == 1 and d.error_count == 1
    else:
        assert len(d) == 2 and d.error_count == 0


def test_garbage_frames_never_crash():
    rng = np.random.default_rng(7)
    frames = [
        (float(i), rng.integers(0, 256, int(rng.integers(0, 120)), dtype=np.uint8).tobytes(), 120)
        for i in range(3000)
    ]
    for linktype in (LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL):
        d = decode_headers(FrameBatch.from_frames(frames, linktype))
        assert len(d) + d.error_count <= 3000
        assert (d.payload_off + d.payload_len <= d.data.shape[0]).all()


def test_real_capture_matches_scapy_dissection():
    path = shared_pcap("zeek/testing/btest/Traces/wikipedia.pcap")
    from scapy.all import rdpcap

    packets = rdpcap(str(path))
    decoded = [decode_headers(b) for b in CaptureFile(str(path)).batches()]
    assert sum(len(d) for d in decoded) == len(packets)
    d = decoded[0]
    for row in range(len(d)):
        p = packets[int(d.frame[row])]
        layer = p.getlayer(IP) or p.getlayer(IPv6)  # scapy packets are not dicts
        if layer is None:
            continue
        assert address_text(int(d.src_hi[row]), int(d.src_lo[row])) == str(ipaddress.ip_address(layer.src))
        for proto in (TCP, UDP):
            if proto in p:
                assert (d.sport[row], d.dport[row]) == (p[proto].sport, p[proto].dport)
