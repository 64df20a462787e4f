"""Edge cases of the baseline-free detectors, on small scapy-built captures run through the pipeline.

Thresholds just below and at the limit, window expiry, batch-split independence, DHCP re-assignment,
jittered and irregular beacons, attribution of inbound and remote-only activity.
"""

from __future__ import annotations

import random
from typing import Any

from scapy.all import ARP, DNS, DNSQR, ICMP, IP, TCP, UDP, Ether

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.detect.detectors import arp_spoof, beaconing, brute_force, dns_tunnel, port_scan
from heimdal_tui.detect.harness import context_for, pipeline_empty_packets
from heimdal_tui.detect.model import Finding, Severity
from heimdal_tui.pipeline.engine import BatchResult, Pipeline

Frame = tuple[float, bytes, int]
T0 = 1_760_000_000.0
ROUTER_MAC, ROUTER_IP = "02:00:00:00:00:01", "192.168.1.1"
A_MAC, A_IP = "02:00:00:00:00:0a", "192.168.1.10"
B_MAC, B_IP = "02:00:00:00:00:0b", "192.168.1.11"
C_MAC, C_IP = "02:00:00:00:00:0c", "192.168.1.12"
BROADCAST = "ff:ff:ff:ff:ff:ff"


def key(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def frame(ts: float, pkt: Any) -> Frame:
    raw = bytes(pkt)
    return (ts, raw, len(raw))


def tcp(ts: float, smac: str, dmac: str, src: str, dst: str, sport: int, dport: int, flags: str) -> Frame:
    return frame(
        ts, Ether(src=smac, dst=dmac) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)
    )


def arp(
    ts: float,
    op: int,
    hwsrc: str,
    psrc: str,
    pdst: str,
    dst: str = BROADCAST,
    hwdst: str = "00:00:00:00:00:00",
) -> Frame:
    return frame(ts, Ether(src=hwsrc, dst=dst) / ARP(op=op, hwsrc=hwsrc, psrc=psrc, pdst=pdst, hwdst=hwdst))


def run(
    detector: Any, frames: list[Frame], batch: int | None = None, pipeline: Pipeline | None = None
) -> list[Finding]:
    """Feed ``frames`` (sorted by time) in batches of ``batch`` frames, then the end-of-input context."""
    frames = sorted(frames, key=lambda f: f[0])
    pipeline = pipeline or Pipeline()
    size = batch or max(1, len(frames))
    out: list[Finding] = []
    for i in range(0, len(frames), size):
        out += detector.observe(
            context_for(pipeline, pipeline.feed(FrameBatch.from_frames(frames[i : i + size])))
        )
    ended = pipeline.finish()
    final = BatchResult(pipeline_empty_packets(), [], ended.clear(), ended, [], [])
    out += detector.observe(context_for(pipeline, final))
    return out


def signature(findings: list[Finding]) -> list[tuple[Any, ...]]:
    return sorted((f.kind, f.device, f.peer or "", round(f.ts, 6), f.summary) for f in findings)


# -- port_scan ------------------------------------------------------------------------------------------
def syn_scan(n_ports: int, start: float = T0, step: float = 0.05, rst: bool = True) -> list[Frame]:
    frames = []
    for i in range(n_ports):
        t = start + i * step
        frames.append(tcp(t, A_MAC, B_MAC, A_IP, B_IP, 50000, 1000 + i, "S"))
        if rst:
            frames.append(tcp(t + 0.001, B_MAC, A_MAC, B_IP, A_IP, 1000 + i, 50000, "RA"))
    return frames


def test_vertical_scan_threshold_is_exact():
    assert run(port_scan.PortScanDetector(), syn_scan(99)) == []
    (finding,) = run(port_scan.PortScanDetector(), syn_scan(100))
    assert finding.kind == "port_scan" and finding.device == key(A_MAC) and finding.peer == B_IP
    assert finding.ts == T0 + 99 * 0.05  # the 100th probe completed the evidence
    assert finding.evidence["distinct_ports"] == 100 and finding.evidence["answered_rst"] == 99
    assert finding.evidence["example_ports"][:2] == ["tcp/1000", "tcp/1001"]
    assert finding.severity == Severity.HIGH
    assert "probed 100 ports on 192.168.1.11" in finding.summary


def test_repeated_probes_count_once_and_null_fin_xmas_count():
    frames = syn_scan(60, rst=False)
    frames += [tcp(T0 + 10 + i * 0.01, A_MAC, B_MAC, A_IP, B_IP, 50000, 1000 + i, "S") for i in range(60)]
    assert run(port_scan.PortScanDetector(), frames) == []  # 60 distinct ports, probed twice
    frames += [tcp(T0 + 20 + i * 0.01, A_MAC, B_MAC, A_IP, B_IP, 50001, 2000 + i, "FPU") for i in range(20)]
    frames += [tcp(T0 + 21 + i * 0.01, A_MAC, B_MAC, A_IP, B_IP, 50001, 3000 + i, "") for i in range(20)]
    (finding,) = run(port_scan.PortScanDetector(), frames)
    assert finding.evidence["probe_types"] == {"syn": 60, "xmas": 20, "null": 20}


def test_window_expiry_and_realert():
    # 60 ports, then 70 s later 60 other ports: never 100 within 60 s
    frames = syn_scan(60) + [
        tcp(T0 + 70 + i * 0.05, A_MAC, B_MAC, A_IP, B_IP, 50000, 5000 + i, "S") for i in range(60)
    ]
    assert run(port_scan.PortScanDetector(), frames) == []
    # a scan that goes on for 150 s at 4 ports/s re-alerts once per window, not per probe
    long_scan = syn_scan(600, step=0.25, rst=False)
    findings = run(port_scan.PortScanDetector(), long_scan, batch=97)
    assert [round(f.ts - T0, 2) for f in findings] == [24.75, 84.75, 144.75]


def test_batch_split_does_not_change_findings():
    frames = syn_scan(150, step=0.3)
    whole = run(port_scan.PortScanDetector(), frames)
    assert signature(whole) == signature(run(port_scan.PortScanDetector(), frames, batch=13))
    assert len(whole) == 1


def test_settings_can_change_at_any_time():
    detector = port_scan.PortScanDetector()
    detector.settings = port_scan.Settings(vertical_ports=50)
    (finding,) = run(detector, syn_scan(60))
    assert finding.evidence["threshold"] == 50 and finding.evidence["distinct_ports"] == 50


def horizontal(n_hosts: int, answered: bool) -> list[Frame]:
    frames = []
    for i in range(n_hosts):
        t, dst, dmac = T0 + i * 0.2, f"192.168.1.{100 + i}", f"02:00:00:00:01:{i:02x}"
        frames.append(tcp(t, A_MAC, dmac, A_IP, dst, 40000 + i, 445, "S"))
        if answered:
            frames.append(tcp(t + 0.002, dmac, A_MAC, dst, A_IP, 445, 40000 + i, "SA"))
    frames.append(tcp(T0 + 60, C_MAC, A_MAC, C_IP, A_IP, 1234, 80, "A"))  # time moves on
    return frames


def test_horizontal_scan_counts_hosts_that_did_not_answer():
    assert run(port_scan.PortScanDetector(), horizontal(19, answered=False)) == []
    assert run(port_scan.PortScanDetector(), horizontal(40, answered=True)) == []  # a busy client
    (finding,) = run(port_scan.PortScanDetector(), horizontal(20, answered=False), batch=6)
    assert finding.evidence["scan_type"] == "horizontal" and finding.evidence["port"] == "tcp/445"
    assert finding.device == key(A_MAC) and finding.ts == T0 + 19 * 0.2


def test_arp_and_icmp_sweeps_count_unanswered_targets():
    frames = [arp(T0 + i * 0.02, 1, A_MAC, A_IP, f"192.168.1.{i + 100}") for i in range(60)]
    frames.append(tcp(T0 + 30, C_MAC, A_MAC, C_IP, A_IP, 1234, 80, "A"))
    (finding,) = run(port_scan.PortScanDetector(), frames)
    assert finding.evidence["scan_type"] == "arp_sweep" and finding.device == key(A_MAC)
    assert finding.ts == T0 + 49 * 0.02 and finding.evidence["distinct_targets_unanswered"] == 50
    # every target answers (a router refreshing its neighbour cache): no sweep
    answered = list(frames)
    for i in range(60):
        mac = f"02:00:00:00:02:{i:02x}"
        answered.append(
            arp(T0 + i * 0.02 + 0.001, 2, mac, f"192.168.1.{i + 100}", A_IP, dst=A_MAC, hwdst=A_MAC)
        )
    assert run(port_scan.PortScanDetector(), answered) == []
    pings = [
        frame(
            T0 + i * 0.05, Ether(src=A_MAC, dst=ROUTER_MAC) / IP(src=A_IP, dst=f"10.9.0.{i}") / ICMP(type=8)
        )
        for i in range(1, 31)
    ]
    pings.append(tcp(T0 + 30, C_MAC, A_MAC, C_IP, A_IP, 1234, 80, "A"))
    (sweep,) = run(port_scan.PortScanDetector(), pings)
    assert sweep.evidence["scan_type"] == "icmp_sweep" and sweep.evidence["distinct_targets_unanswered"] == 30


def test_remote_scanner_is_reported_on_the_victim_and_remote_only_scans_are_not():
    inbound = [
        tcp(T0 + i * 0.01, ROUTER_MAC, B_MAC, "203.0.113.9", B_IP, 40000, 1 + i, "S") for i in range(120)
    ]
    (finding,) = run(port_scan.PortScanDetector(), inbound)
    assert finding.device == key(B_MAC) and finding.peer == "203.0.113.9"
    assert finding.severity == Severity.MEDIUM
    detector = port_scan.PortScanDetector()
    remote = [
        tcp(T0 + i * 0.01, ROUTER_MAC, B_MAC, "203.0.113.9", "198.51.100.7", 40000, 1 + i, "S")
        for i in range(120)
    ]
    assert run(detector, remote) == [] and detector.unattributed == 1


def test_udp_replies_from_a_server_are_not_a_scan():
    frames = []
    for i in range(150):  # a DNS server answering 150 client ports
        t = T0 + i * 0.1
        q = Ether(src=A_MAC, dst=ROUTER_MAC) / IP(src=A_IP, dst=ROUTER_IP) / UDP(sport=30000 + i, dport=53)
        r = Ether(src=ROUTER_MAC, dst=A_MAC) / IP(src=ROUTER_IP, dst=A_IP) / UDP(sport=53, dport=30000 + i)
        frames += [frame(t, q / DNS(qd=DNSQR(qname="example.com"))), frame(t + 0.01, r / DNS(qr=1))]
    assert run(port_scan.PortScanDetector(), frames) == []
    udp_scan = [
        frame(
            T0 + i * 0.1, Ether(src=A_MAC, dst=B_MAC) / IP(src=A_IP, dst=B_IP) / UDP(sport=5000, dport=1 + i)
        )
        for i in range(100)
    ]
    (finding,) = run(port_scan.PortScanDetector(), udp_scan)
    assert finding.evidence["probe_types"] == {"udp": 100}


# -- arp_spoof ------------------------------------------------------------------------------------------
def lan_with_gateway(until: float) -> list[Frame]:
    """The router and two hosts: ARP bindings, traffic to the internet through the router."""
    frames = [
        arp(T0, 1, ROUTER_MAC, ROUTER_IP, A_IP),
        arp(T0 + 0.01, 2, A_MAC, A_IP, ROUTER_IP, dst=ROUTER_MAC, hwdst=ROUTER_MAC),
        arp(T0 + 0.02, 1, B_MAC, B_IP, ROUTER_IP),
    ]
    t = T0 + 1
    while t < until:
        frames.append(tcp(t, A_MAC, ROUTER_MAC, A_IP, "93.184.216.34", 40000, 443, "A"))
        frames.append(tcp(t + 0.1, ROUTER_MAC, A_MAC, "93.184.216.34", A_IP, 443, 40000, "A"))
        t += 5
    return frames


def test_gateway_impersonation_is_critical():
    frames = lan_with_gateway(T0 + 300)
    frames += [arp(T0 + 200 + i * 2, 2, B_MAC, ROUTER_IP, A_IP, dst=A_MAC, hwdst=A_MAC) for i in range(40)]
    findings = run(arp_spoof.ArpSpoofDetector(), frames, batch=17)
    assert findings and all(f.device == key(B_MAC) and f.peer == ROUTER_IP for f in findings)
    assert findings[0].severity == Severity.CRITICAL and findings[0].ts == T0 + 200
    assert findings[0].evidence["gateway_impersonation"] is True
    assert findings[0].evidence["owner_mac"] == ROUTER_MAC
    assert [round(f.ts - T0) for f in findings] == [200, 260]  # once per window while it goes on
    assert signature(findings) == signature(run(arp_spoof.ArpSpoofDetector(), frames))


def test_dhcp_reassignment_after_silence_is_not_spoofing():
    frames = lan_with_gateway(T0 + 100)
    # C takes B's address 700 s after B's last frame (the lease moved on): no alert
    frames.append(arp(T0 + 720, 1, C_MAC, B_IP, ROUTER_IP))
    frames += [arp(T0 + 730 + i, 1, C_MAC, B_IP, ROUTER_IP) for i in range(5)]  # and keeps claiming it
    assert run(arp_spoof.ArpSpoofDetector(), frames) == []
    # ...but 100 s after B was last heard of, it is a conflict
    recent = [*lan_with_gateway(T0 + 100), arp(T0 + 120, 1, C_MAC, B_IP, ROUTER_IP)]
    (finding,) = run(arp_spoof.ArpSpoofDetector(), recent)
    assert finding.device == key(C_MAC) and finding.peer == B_IP and finding.severity == Severity.HIGH


def test_own_address_claims_and_floods():
    frames = lan_with_gateway(T0 + 100)
    frames += [arp(T0 + 10 + i * 5, 1, B_MAC, B_IP, ROUTER_IP) for i in range(15)]  # routine requests
    assert run(arp_spoof.ArpSpoofDetector(), frames) == []
    flood = frames + [arp(T0 + 50 + i * 0.5, 2, B_MAC, B_IP, B_IP) for i in range(30)]  # gratuitous replies
    (finding,) = run(arp_spoof.ArpSpoofDetector(), flood)
    assert finding.evidence["flood"] is True and finding.device == key(B_MAC)
    assert finding.severity == Severity.MEDIUM


# -- dns_tunnel -----------------------------------------------------------------------------------------
def queries(names: list[str], start: float = T0, qtype: str = "TXT", step: float = 0.5) -> list[Frame]:
    frames = []
    for i, name in enumerate(names):
        pkt = Ether(src=A_MAC, dst=ROUTER_MAC) / IP(src=A_IP, dst=ROUTER_IP) / UDP(sport=20000 + i, dport=53)
        frames.append(frame(start + i * step, pkt / DNS(rd=1, qd=DNSQR(qname=name, qtype=qtype))))
    return frames


def random_names(n: int, seed: int = 1, zone: str = "exfil.example.net") -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return [f"{''.join(rng.choice(alphabet) for _ in range(40))}.{zone}" for _ in range(n)]


def test_dns_tunnel_threshold_and_signals():
    assert run(dns_tunnel.DnsTunnelDetector(), queries(random_names(29))) == []
    (finding,) = run(dns_tunnel.DnsTunnelDetector(), queries(random_names(30)), batch=7)
    assert finding.device == key(A_MAC) and finding.peer == "example.net"
    assert finding.evidence["unique_names"] == 30 and finding.ts == T0 + 29 * 0.5
    assert set(finding.evidence["signals"]) == {"long", "random", "record_types"}
    assert finding.severity == Severity.HIGH
    assert len(finding.evidence["examples"]) <= 5


def test_dns_tunnel_window_and_ordinary_names():
    # 20 names, then 20 more 400 s later: never 30 within 300 s
    names = random_names(40)
    frames = queries(names[:20]) + queries(names[20:], start=T0 + 400)
    assert run(dns_tunnel.DnsTunnelDetector(), frames) == []
    # 60 ordinary host names under one zone (A queries): many names alone are not a tunnel
    ordinary = [f"host{i}.cdn.example.com" for i in range(60)]
    assert run(dns_tunnel.DnsTunnelDetector(), queries(ordinary, qtype="A")) == []
    # reputation lookups that look like tunnels are ignored by default
    assert run(dns_tunnel.DnsTunnelDetector(), queries(random_names(40, zone="sophosxl.net"))) == []


def test_dns_tunnel_forgets_a_quiet_group_and_finds_the_tunnel_again_when_it_resumes():
    # 40 tunnel names, a pause of 10 minutes, 40 more: a finding for each burst (the first one's
    # group is forgotten while quiet: a window after its last query it holds nothing)
    names = random_names(80)
    frames = queries(names[:40]) + queries(names[40:], start=T0 + 620, qtype="A")
    frames += queries(["www.example.org"], start=T0 + 400, qtype="A")  # another zone, in the pause
    detector = dns_tunnel.DnsTunnelDetector()
    first, second = run(detector, frames, batch=10)
    assert first.ts == T0 + 29 * 0.5 and second.ts == T0 + 620 + 29 * 0.5
    assert first.evidence["qtypes"] == {"TXT": 30} and second.evidence["qtypes"] == {"A": 30}
    assert second.evidence["unique_names"] == 30 and second.evidence["span_s"] == 14.5
    assert second.evidence["signals"] == ["long", "random"]
    # a window after its last query a group is gone (here at the query in the pause)
    detector = dns_tunnel.DnsTunnelDetector()
    run(detector, queries(names[:40]) + queries(["www.example.org"], start=T0 + 400, qtype="A"))
    assert [zone for _, zone in detector.groups] == ["example.org"]


# -- beaconing ------------------------------------------------------------------------------------------
def connections(starts: list[float], dst: str = "198.51.100.20", dport: int = 443) -> list[Frame]:
    frames = []
    for i, t in enumerate(starts):
        sport = 41000 + i
        frames += [
            tcp(t, C_MAC, ROUTER_MAC, C_IP, dst, sport, dport, "S"),
            tcp(t + 0.02, ROUTER_MAC, C_MAC, dst, C_IP, dport, sport, "SA"),
            tcp(t + 0.5, C_MAC, ROUTER_MAC, C_IP, dst, sport, dport, "FA"),
            tcp(t + 0.52, ROUTER_MAC, C_MAC, dst, C_IP, dport, sport, "FA"),
        ]
    return frames


def test_jittered_beacon_is_found():
    rng = random.Random(7)
    starts, t = [], T0
    for _ in range(10):
        starts.append(t)
        t += rng.gauss(60.0, 1.0)
    findings = run(beaconing.BeaconingDetector(), connections(starts), batch=9)
    assert findings, "a 60 s beacon with ~1 s jitter"
    first = findings[0]
    assert first.device == key(C_MAC) and first.peer == "198.51.100.20"
    assert 58 <= first.evidence["median_interval_s"] <= 62 and first.evidence["jitter"] <= 0.05
    assert first.ts in starts
    assert signature(findings) == signature(run(beaconing.BeaconingDetector(), connections(starts)))


def test_irregular_and_excluded_traffic_is_not_beaconing():
    rng = random.Random(3)
    irregular, t = [], T0
    for _ in range(25):
        irregular.append(t)
        t += rng.expovariate(1 / 60)
    assert run(beaconing.BeaconingDetector(), connections(irregular)) == []
    spread, t = [], T0  # telemetry every 300 s +- 30 % (uniform)
    for _ in range(9):
        spread.append(t)
        t += 300 * rng.uniform(0.7, 1.3)
    assert run(beaconing.BeaconingDetector(), connections(spread)) == []
    regular = [T0 + 60 * i for i in range(12)]
    assert run(beaconing.BeaconingDetector(), connections(regular, dst=A_IP)) == []  # a local peer
    ntp = [
        frame(
            t,
            Ether(src=C_MAC, dst=ROUTER_MAC) / IP(src=C_IP, dst="198.51.100.20") / UDP(sport=123, dport=123),
        )
        for t in regular
    ]
    assert run(beaconing.BeaconingDetector(), ntp) == []
    fast = [T0 + 2 * i for i in range(30)]  # a session's requests, not check-ins
    assert run(beaconing.BeaconingDetector(), connections(fast)) == []


# -- brute_force ----------------------------------------------------------------------------------------
def ssh_attempts(
    starts: list[float], src: str = A_IP, smac: str = A_MAC, dst: str = B_IP, dmac: str = B_MAC
) -> list[Frame]:
    frames = []
    for i, t in enumerate(starts):
        sport = 45000 + i
        frames += [
            tcp(t, smac, dmac, src, dst, sport, 22, "S"),
            tcp(t + 0.01, dmac, smac, dst, src, 22, sport, "SA"),
            tcp(t + 1.5, dmac, smac, dst, src, 22, sport, "FA"),
        ]
    return frames


def test_brute_force_threshold_and_window():
    assert run(brute_force.BruteForceDetector(), ssh_attempts([T0 + 5 * i for i in range(9)])) == []
    (finding,) = run(brute_force.BruteForceDetector(), ssh_attempts([T0 + 5 * i for i in range(10)]), batch=4)
    assert finding.device == key(A_MAC) and finding.peer == B_IP and finding.ts == T0 + 45
    assert finding.evidence["attempts"] == 10 and finding.evidence["service"] == "SSH"
    assert finding.severity == Severity.HIGH
    # one attempt every 7 s: at most 9 in any 60 s window
    assert run(brute_force.BruteForceDetector(), ssh_attempts([T0 + 7 * i for i in range(20)])) == []
    # not an authentication port
    web = ssh_attempts([T0 + i for i in range(30)])
    detector = brute_force.BruteForceDetector(brute_force.Settings(ports=(23,)))
    assert run(detector, web) == []


def test_brute_force_forgets_pairs_idle_for_a_window():
    detector = brute_force.BruteForceDetector()
    # three attempts from A, then a long pause; B's attempts come 10 minutes later
    frames = ssh_attempts([T0, T0 + 1, T0 + 2])
    frames += ssh_attempts([T0 + 600 + i for i in range(3)], src=C_IP, smac=C_MAC)
    assert run(detector, frames, batch=3) == []
    assert len(detector.pairs) == 1  # A's pair went idle a window before B's last start
    # A comes back and guesses fast: the pair starts again and is still found
    later = ssh_attempts([T0 + 700 + 2 * i for i in range(10)])
    (finding,) = run(detector, later)
    assert finding.device == key(A_MAC) and finding.evidence["attempts"] == 10
    assert finding.evidence["distinct_source_ports"] == 10


def test_inbound_brute_force_is_reported_on_the_target():
    frames = ssh_attempts([T0 + 2 * i for i in range(12)], src="203.0.113.50", smac=ROUTER_MAC)
    (finding,) = run(brute_force.BruteForceDetector(), frames)
    assert finding.device == key(B_MAC) and finding.peer == "203.0.113.50"
    assert finding.evidence["direction"] == "inbound"


def dhcp_request(ts: float, mac: str, hostname: str) -> Frame:
    from scapy.all import BOOTP, DHCP

    pkt = (
        Ether(src=mac, dst=BROADCAST)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=7)
        / DHCP(options=[("message-type", "request"), ("hostname", hostname), "end"])
    )
    return frame(ts, pkt)


def test_same_host_back_with_a_new_mac_is_not_spoofing():
    frames = lan_with_gateway(T0 + 200)
    frames += [dhcp_request(T0 + 5, B_MAC, "pixel-7"), dhcp_request(T0 + 100, C_MAC, "pixel-7")]
    frames.append(arp(T0 + 101, 1, C_MAC, B_IP, ROUTER_IP))  # B's address, 90 s after B was seen
    assert run(arp_spoof.ArpSpoofDetector(), frames) == []
    other = [f for f in frames if f[0] != T0 + 100] + [dhcp_request(T0 + 100, C_MAC, "laptop")]
    (finding,) = run(arp_spoof.ArpSpoofDetector(), other)
    assert finding.device == key(C_MAC) and finding.peer == B_IP
