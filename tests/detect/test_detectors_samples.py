"""The six baseline-free detectors against the project's sample captures and their ground truth.

Every incident of a kind these detectors raise must be found on the right device, between the
incident's first frame and a minute after its last; the benign capture (the same 45 minutes without
the incidents) must raise none of these kinds. Each capture runs with the default batch size (16 MiB:
one batch) and with 8 KiB batches: the findings must be the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from heimdal_tui.detect.detectors.arp_spoof import ArpSpoofDetector
from heimdal_tui.detect.detectors.beaconing import BeaconingDetector
from heimdal_tui.detect.detectors.brute_force import BruteForceDetector
from heimdal_tui.detect.detectors.dns_tunnel import DnsTunnelDetector
from heimdal_tui.detect.detectors.port_scan import PortScanDetector
from heimdal_tui.detect.detectors.threat_intel import ThreatIntelDetector
from heimdal_tui.detect.harness import contexts
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.model import Finding, Severity

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
KINDS = ("port_scan", "arp_spoof", "dns_tunnel", "beaconing", "brute_force", "threat_intel")
CHUNKS = (None, 8192)


def _intel() -> ThreatIntel:
    intel = ThreatIntel()
    # the beaconing incident's peer, as a feed would list it (a /24 around it, and its domain)
    intel.add("167.99.153.0/24", "cidr", confidence=0.95, source="test-feed")
    intel.add("printhub-update.com", "domain", confidence=0.7, source="test-feed")
    return intel


def _run(name: str, chunk: int | None) -> list[Finding]:
    detectors: list[Any] = [
        PortScanDetector(),
        ArpSpoofDetector(),
        DnsTunnelDetector(),
        BeaconingDetector(),
        BruteForceDetector(),
        ThreatIntelDetector(None, _intel()),
    ]
    findings: list[Finding] = []
    for ctx in contexts([str(SAMPLES / name)], chunk_bytes=chunk):
        for detector in detectors:
            findings.extend(detector.observe(ctx))
    return findings


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, int | None], list[Finding]]:
    return {
        (name, chunk): _run(name, chunk)
        for name in ("home_lan_incidents.pcap", "home_lan_benign.pcap")
        for chunk in CHUNKS
    }


def _truth() -> dict[str, Any]:
    return json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text(encoding="utf-8"))


def _mac_key(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_every_incident_is_found_on_its_device_in_time(runs, chunk):
    findings = runs["home_lan_incidents.pcap", chunk]
    checked = 0
    for incident in _truth()["incidents"]:
        if incident["kind"] not in KINDS:
            continue
        device = _mac_key(incident["device"]["mac"])
        hits = [
            f
            for f in findings
            if f.kind == incident["kind"]
            and f.device == device
            and incident["start_ts"] <= f.ts <= incident["end_ts"] + 60
        ]
        assert hits, f"{incident['id']}: no {incident['kind']} finding on {incident['device']['mac']}"
        checked += 1
    assert checked == 5  # port_scan, brute_force, beaconing, dns_tunnel, arp_spoof


@pytest.mark.parametrize("chunk", CHUNKS)
def test_findings_are_specific(runs, chunk):
    findings = runs["home_lan_incidents.pcap", chunk]
    by_kind: dict[str, list[Finding]] = {}
    for f in findings:
        by_kind.setdefault(f.kind, []).append(f)
    plug, nas = "192.168.1.70", "192.168.1.10"
    scans = by_kind["port_scan"]
    assert {f.evidence["scan_type"] for f in scans} == {"arp_sweep", "vertical"}
    vertical = [f for f in scans if f.evidence["scan_type"] == "vertical"]
    assert all(f.peer == nas and f.evidence["scanner"] == plug for f in vertical)
    assert vertical[0].evidence["answered_rst"] > 50 and vertical[0].severity == Severity.HIGH
    assert all(f.peer == nas and f.evidence["service"] == "SSH" for f in by_kind["brute_force"])
    arp = by_kind["arp_spoof"]
    gateway = [f for f in arp if f.peer == "192.168.1.1"]
    assert gateway and all(f.severity == Severity.CRITICAL for f in gateway)
    assert gateway[0].evidence["owner_mac"] == "50:c7:bf:3e:91:a4"
    (tunnel,) = by_kind["dns_tunnel"]
    assert tunnel.peer == "cdn-metrics-sync.com" and tunnel.evidence["unique_names"] >= 30
    (beacon,) = by_kind["beaconing"]
    assert beacon.peer == "167.99.153.80" and 55 <= beacon.evidence["median_interval_s"] <= 65
    assert beacon.evidence["peer_name"] == "cdn-sync.printhub-update.com"
    intel = by_kind["threat_intel"]
    assert {f.device for f in intel} == {_mac_key("3c:52:82:e4:a7:c1")}  # the printer
    assert any(f.severity == Severity.CRITICAL for f in intel)  # the /24 at confidence 0.95
    for f in findings:
        assert f.device != 0 and f.summary and f.evidence


@pytest.mark.parametrize("chunk", CHUNKS)
def test_benign_capture_raises_none_of_these_kinds(runs, chunk):
    findings = [f for f in runs["home_lan_benign.pcap", chunk] if f.kind in KINDS]
    assert findings == [], [f.summary for f in findings]


@pytest.mark.parametrize("name", ["home_lan_incidents.pcap", "home_lan_benign.pcap"])
def test_findings_do_not_depend_on_batch_size(runs, name):
    def key(f: Finding) -> tuple[Any, ...]:
        return (f.kind, f.device, f.peer or "", round(f.ts, 6), f.severity, f.summary)

    whole = sorted(map(key, runs[name, None]))
    split = sorted(map(key, runs[name, 8192]))
    assert whole == split
