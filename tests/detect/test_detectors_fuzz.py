"""Fuzz: random and half-valid frames through the harness must never make a detector raise.

Three mixes, each written as a pcap and read back through ``harness.contexts`` with tiny and default
batches: pure random bytes; frames with a valid Ethernet header and random IPv4/IPv6/ARP/VLAN
contents drawn from a small pool of local and remote addresses and busy ports (so flows, devices, ARP
bindings and DNS parsing all get exercised); and real DNS/TLS/HTTP frames with random bit flips. The
detectors run with very low thresholds so their finding code runs on garbage too.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.all import DNS, DNSQR, IP, TCP, UDP, Ether, Raw

from heimdal_tui.detect.detectors import (
    arp_spoof,
    beaconing,
    brute_force,
    dns_tunnel,
    port_scan,
    threat_intel,
)
from heimdal_tui.detect.harness import contexts
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.model import Finding

T0 = 1_760_000_000.0
LOCAL = [bytes([192, 168, 1, i]) for i in (1, 2, 3, 4, 5, 10, 255)] + [bytes(4), bytes([255] * 4)]
REMOTE = [bytes([203, 0, 113, i]) for i in (1, 2, 3)] + [bytes([224, 0, 0, 251])]
MACS = [bytes([2, 0, 0, 0, 0, i]) for i in range(1, 6)] + [b"\xff" * 6, bytes(6), b"\x01\x00\x5e\x00\x00\xfb"]
PORTS = [0, 21, 22, 23, 53, 80, 123, 443, 445, 5353, 5355, 8080, 65535]


def _write_pcap(path: Path, frames: list[tuple[float, bytes]]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, data in frames:
        sec = int(ts)
        out.append(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(data), len(data) + 4))
        out.append(data)
    path.write_bytes(b"".join(out))


def _times(rng: np.random.Generator, n: int) -> list[float]:
    ts = T0 + np.cumsum(rng.exponential(0.1, n))
    jumble = rng.random(n) < 0.05  # some frames out of order or with the same time
    ts[jumble] -= rng.exponential(3.0, int(jumble.sum()))
    return [float(t) for t in ts]


def random_bytes(rng: np.random.Generator, n: int) -> list[tuple[float, bytes]]:
    sizes = rng.integers(0, 200, n)
    return list(zip(_times(rng, n), (rng.bytes(int(s)) for s in sizes), strict=True))


def half_valid(rng: np.random.Generator, n: int) -> list[tuple[float, bytes]]:
    frames = []
    pick = rng.choice
    for ts in _times(rng, n):
        dst, src = MACS[int(rng.integers(len(MACS)))], MACS[int(rng.integers(len(MACS)))]
        kind = int(rng.integers(6))
        if kind == 0:  # ARP with random fields
            body = struct.pack(
                "!HHBBH6s4s6s4s",
                1,
                0x0800,
                6,
                4,
                int(pick([1, 2, 3])),
                MACS[int(rng.integers(len(MACS)))],
                LOCAL[int(rng.integers(len(LOCAL)))],
                MACS[int(rng.integers(len(MACS)))],
                LOCAL[int(rng.integers(len(LOCAL)))],
            )
            frames.append((ts, dst + src + b"\x08\x06" + body[: int(rng.integers(0, 29))]))
            continue
        pool = LOCAL + REMOTE
        a, b = pool[int(rng.integers(len(pool)))], pool[int(rng.integers(len(pool)))]
        proto = int(pick([1, 6, 17, 58, 2]))
        sport, dport = int(pick(PORTS)), int(pick(PORTS))
        if rng.random() < 0.3:
            dport = int(rng.integers(65536))
        if kind == 5:  # a DNS query whose name is random bytes (control characters, dots, pointers)
            labels = b"".join(
                bytes([int(n)]) + rng.bytes(int(n)) for n in rng.integers(1, 64, int(rng.integers(1, 5)))
            )
            qtype = int(pick([1, 16, 10, 255, int(rng.integers(65536))]))
            dns = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + labels + b"\x07example\x03com\x00"
            dns += struct.pack("!HH", qtype, 1)
            udp = struct.pack("!HHHH", int(rng.integers(1024, 65536)), int(pick([53, 5355])), 8 + len(dns), 0)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(dns), 0, 0, 64, 17, 0, LOCAL[1], LOCAL[0])
            frames.append((ts, dst + src + b"\x08\x00" + ip + udp + dns))
            continue
        if proto == 6:
            l4 = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, int(rng.integers(256)), 1024, 0, 0)
        elif proto == 17:
            l4 = struct.pack("!HHHH", sport, dport, 8 + 40, 0)
        else:
            l4 = struct.pack("!BBH", int(pick([0, 3, 8, 128, 129])), 0, 0) + rng.bytes(4)
        payload = rng.bytes(int(rng.integers(0, 60)))
        if kind == 4:  # IPv6 with random addresses sometimes
            v6 = [bytes(16), b"\xfe\x80" + bytes(13) + b"\x01", b"\x20\x01\x0d\xb8" + rng.bytes(12)]
            header = struct.pack("!IHBB", 0x60000000, len(l4) + len(payload), proto, 64)
            frames.append((ts, dst + src + b"\x86\xdd" + header + pick(v6) + pick(v6) + l4 + payload))
            continue
        total = 20 + len(l4) + len(payload) + int(pick([0, 0, 0, -30, 500]))
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, max(0, min(total, 65535)), 0, 0, 64, proto, 0, a, b)
        vlan = b"\x81\x00\x00\x05" if kind == 3 else b""
        frames.append((ts, dst + src + vlan + b"\x08\x00" + header + l4 + payload))
    return frames


def flipped(rng: np.random.Generator, n: int) -> list[tuple[float, bytes]]:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    local = IP(src="192.168.1.2", dst="192.168.1.1")
    remote = IP(src="192.168.1.2", dst="203.0.113.1")
    hello = bytes.fromhex("160301002c0100002803030000") + bytes(40)
    seeds = [
        eth / local / UDP(sport=5000, dport=53) / DNS(qd=DNSQR(qname="a" * 60 + ".x.example", qtype="TXT")),
        eth / local / UDP(sport=53, dport=5000) / DNS(qr=1, qd=DNSQR(qname="x.example")),
        eth
        / remote
        / TCP(sport=5000, dport=80, flags="PA")
        / Raw(b"GET / HTTP/1.1\r\nHost: x.example\r\n\r\n"),
        eth / remote / TCP(sport=5000, dport=443, flags="PA") / Raw(hello),
    ]
    seeds = [bytes(seed) for seed in seeds]
    frames = []
    for ts in _times(rng, n):
        data = bytearray(seeds[int(rng.integers(len(seeds)))])
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(14, len(data)))
            data[pos] ^= 1 << int(rng.integers(8))
        frames.append((ts, bytes(data[: int(rng.integers(14, len(data) + 1))])))
    return frames


def _detectors() -> list[Any]:
    intel = ThreatIntel()
    intel.add("203.0.113.0/30", "cidr", confidence=0.95)
    intel.add("example", "domain")
    intel.add("fe80::/10", "cidr")
    return [
        port_scan.PortScanDetector(
            port_scan.Settings(
                vertical_ports=5, horizontal_hosts=5, arp_targets=5, icmp_targets=5, answer_wait=0.5
            )
        ),
        arp_spoof.ArpSpoofDetector(arp_spoof.Settings(silence=10.0, flood_replies=3, gateway_min_frames=1)),
        dns_tunnel.DnsTunnelDetector(dns_tunnel.Settings(min_unique=3, min_signals=1)),
        beaconing.BeaconingDetector(beaconing.Settings(min_connections=3, min_interval=1.0)),
        brute_force.BruteForceDetector(brute_force.Settings(min_attempts=2)),
        threat_intel.ThreatIntelDetector(None, intel),
    ]


@pytest.mark.parametrize("mix", [random_bytes, half_valid, flipped])
@pytest.mark.parametrize("seed", [1, 2])
def test_no_detector_raises_on_random_frames(tmp_path: Path, mix: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "fuzz.pcap"
    _write_pcap(path, mix(rng, 1200))
    for chunk in (None, 4096):
        detectors = _detectors()
        findings: list[Finding] = []
        for ctx in contexts([str(path)], chunk_bytes=chunk):
            for detector in detectors:
                findings.extend(detector.observe(ctx))
        for f in findings:
            assert f.device != 0 and isinstance(f.summary, str) and isinstance(f.evidence, dict)
