"""The baseline-free detectors on real captures from other tools' test suites (../shared/pcaps).

- nDPI synscan.pcap: an nmap SYN scan, 172.16.0.8 -> 64.13.134.52, ~1000 ports in 23 s;
- Slips test8-malicious.pcap: 192.168.1.247 ARP-sweeps 192.168.1.0/24 (Slips: "performing an arp scan");
- nDPI dns_exfiltration.pcap: dnscat2 over DNS to 192.168.203.167 (nDPI: "Susp DGA Domain name");
- suricata-verify dns/bug-1158: an iodine tunnel under srv.tunnel.com;
- Zeek ftp/bruteforce.pcap: 192.168.56.1 fails 20 FTP logins over 30 connections (Zeek notice);
- nDPI telegram.pcap and teams.pcap: ordinary home-LAN traffic that must stay quiet.

Every address in these captures is in RFC 1918 space except synscan's target, so the default local
networks attribute each finding to a local device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from heimdal_tui.detect.detectors.arp_spoof import ArpSpoofDetector
from heimdal_tui.detect.detectors.beaconing import BeaconingDetector
from heimdal_tui.detect.detectors.brute_force import BruteForceDetector
from heimdal_tui.detect.detectors.dns_tunnel import DnsTunnelDetector
from heimdal_tui.detect.detectors.port_scan import PortScanDetector
from heimdal_tui.detect.harness import contexts
from heimdal_tui.detect.model import Finding

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"
NDPI = "ndpi/tests/cfgs/default/pcap"


def _capture(relative: str) -> str:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: the real-capture checks need ../shared/pcaps beside the repo")
    return str(path)


def _run(relative: str, chunk: int | None = None) -> list[Finding]:
    detectors: list[Any] = [
        PortScanDetector(),
        ArpSpoofDetector(),
        DnsTunnelDetector(),
        BeaconingDetector(),
        BruteForceDetector(),
    ]
    findings: list[Finding] = []
    for ctx in contexts([_capture(relative)], chunk_bytes=chunk):
        for detector in detectors:
            findings.extend(detector.observe(ctx))
    return findings


def _kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


@pytest.mark.shared
@pytest.mark.parametrize("chunk", [None, 4096])
def test_nmap_syn_scan_names_the_scanner(chunk):
    scans = _kind(_run(f"{NDPI}/synscan.pcap", chunk), "port_scan")
    assert len(scans) == 1
    (scan,) = scans
    assert scan.evidence["scanner"] == "172.16.0.8" and scan.peer == "64.13.134.52"
    assert scan.evidence["scan_type"] == "vertical" and scan.evidence["distinct_ports"] >= 100
    assert scan.device == int("0025b3bf91ee", 16)  # 172.16.0.8's MAC
    assert "172.16.0.8" in scan.summary


@pytest.mark.shared
def test_arp_sweep_names_the_sweeper():
    findings = _run("slips/dataset/test8-malicious.pcap")
    scans = _kind(findings, "port_scan")
    assert [f.evidence["scan_type"] for f in scans] == ["arp_sweep"]
    assert scans[0].evidence["scanner"] == "192.168.1.247 (50:ed:3c:39:bc:d9)"
    assert scans[0].device == int("50ed3c39bcd9", 16)
    assert "192.168.1.247" in scans[0].summary
    assert _kind(findings, "arp_spoof") == []


@pytest.mark.shared
def test_dnscat2_exfiltration_is_a_dns_tunnel():
    tunnels = _kind(_run(f"{NDPI}/dns_exfiltration.pcap"), "dns_tunnel")
    assert len(tunnels) == 1
    evidence = tunnels[0].evidence
    assert evidence["unique_names"] >= 30 and evidence["mean_label_length"] >= 20
    assert "random" in evidence["signals"]
    assert any(name.startswith("dnscat.") for name in evidence["examples"])


@pytest.mark.shared
def test_iodine_tunnel_is_a_dns_tunnel():
    tunnels = _kind(_run("suricata-verify/tests/dns/bug-1158/input.pcap"), "dns_tunnel")
    assert [f.peer for f in tunnels] == ["tunnel.com"]
    assert tunnels[0].evidence["txt_null_any_share"] == 1.0


@pytest.mark.shared
def test_ftp_brute_force():
    findings = _run("zeek/testing/btest/Traces/ftp/bruteforce.pcap")
    attacks = _kind(findings, "brute_force")
    assert attacks, "30 FTP logins in 59 s must be a brute force"
    assert all(f.evidence["source"] == "192.168.56.1" and f.evidence["service"] == "FTP" for f in attacks)
    assert attacks[0].peer == "192.168.56.101"
    assert _kind(findings, "port_scan") == []


@pytest.mark.shared
@pytest.mark.parametrize("name", ["telegram.pcap", "teams.pcap"])
def test_ordinary_home_traffic_stays_quiet(name):
    findings = _run(f"{NDPI}/{name}")
    noisy = [f for f in findings if f.kind in ("port_scan", "arp_spoof", "dns_tunnel", "brute_force")]
    assert noisy == [], [f.summary for f in noisy]
