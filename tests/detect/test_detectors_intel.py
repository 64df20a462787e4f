"""Threat intelligence: indicator files, matching, expiry, and the threat_intel detector."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, Raw

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.detect.detectors.threat_intel import Settings, ThreatIntelDetector
from heimdal_tui.detect.harness import context_for
from heimdal_tui.detect.intel import Indicator, ThreatIntel, parse_expiry
from heimdal_tui.detect.model import Finding, Severity
from heimdal_tui.devices.locality import address_pair
from heimdal_tui.pipeline.engine import Pipeline

T0 = 1_760_000_000.0
LAPTOP_MAC, LAPTOP_IP = "02:00:00:00:00:42", "192.168.1.42"
ROUTER_MAC, ROUTER_IP = "02:00:00:00:00:01", "192.168.1.1"


def _match(intel: ThreatIntel, address: str) -> Indicator | None:
    return intel.match_ip(*address_pair(address))


def test_plain_list_with_comments_and_bad_lines(tmp_path: Path):
    path = tmp_path / "feed.txt"
    path.write_text(
        "# a feed\n\n198.51.100.7\n203.0.113.0/24  # a whole network\nevil.example\n"
        "2001:db8:bad::/48\n0.0.0.0 ads.example\nnot an indicator\n999.1.2.3\n*.wild.example\n",
        encoding="utf-8",
    )
    intel = ThreatIntel()
    report = intel.load_file(path)
    assert report.loaded == 6 and report.skipped == 2
    assert [e.split(":")[0].rsplit(" ", 1)[1] for e in report.errors] == ["8", "9"]  # line numbers
    assert report.errors[0].startswith(f"{path} line 8: ")
    assert all(str(path) in e for e in report.errors)
    assert _match(intel, "198.51.100.7") is not None and _match(intel, "198.51.100.8") is None
    assert _match(intel, "203.0.113.200").value == "203.0.113.0/24"  # type: ignore[union-attr]
    assert _match(intel, "2001:db8:bad:1::5") is not None
    assert (
        intel.match_domain("ads.example") is not None and intel.match_domain("a.b.wild.example") is not None
    )
    assert intel.match_domain("x.evil.example.") is not None
    assert intel.match_domain("notevil.example") is None and intel.match_domain("example") is None
    assert intel.match_ip(*address_pair("10.0.0.1")) is None


def test_csv_and_json_lines(tmp_path: Path):
    csv_path = tmp_path / "feed.csv"
    csv_path.write_text(
        "indicator,type,confidence,source,expiry\n"
        "198.51.100.0/25,cidr,0.95,feodo,2030-01-01T00:00:00Z\n"
        "198.51.100.0/24,cidr,60,abuse,\n"
        "bad.example,domain,0.5,,1700000000\n"
        "oops,ip,0.5,,\n"
        "good.example,domain,2.5x,,\n",
        encoding="utf-8",
    )
    intel = ThreatIntel()
    report = intel.load_file(csv_path)
    assert report.loaded == 3 and report.skipped == 2 and len(report.errors) == 2
    narrow = _match(intel, "198.51.100.10")
    assert narrow is not None and narrow.value == "198.51.100.0/25" and narrow.confidence == 0.95
    assert narrow.expiry == parse_expiry("2030-01-01T00:00:00Z") and narrow.source == "feodo"
    wide = _match(intel, "198.51.100.200")
    assert wide is not None and wide.confidence == pytest.approx(0.6)  # 0..100 scaled
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_text(
        json.dumps({"indicator": "c2.example", "type": "domain", "confidence": 0.9, "source": "misp"})
        + "\n{broken\n"
        + json.dumps({"indicator": "192.0.2.1", "expiry": None})
        + "\n[1, 2]\n",
        encoding="utf-8",
    )
    report = intel.load_file(jsonl)
    assert report.loaded == 2 and report.skipped == 2
    c2 = intel.match_domain("www.c2.example")
    assert c2 is not None and c2.source == "misp" and c2.confidence == 0.9


def test_add_and_expire():
    intel = ThreatIntel()
    intel.add("192.0.2.0/24", "cidr", confidence=0.9, source="asgard", expiry=T0 + 100)
    intel.add("192.0.2.5", "ip", confidence=0.5, source="asgard")
    intel.add("Evil.Example.", "domain", expiry="2020-01-01")
    with pytest.raises(ValueError):
        intel.add("192.0.2.0/24", "ip")
    with pytest.raises(ValueError):
        intel.add("bad domain", "domain")
    with pytest.raises(ValueError):
        intel.add("x.example", "url")
    assert len(intel) == 3
    assert intel.expire(T0) == 1  # the domain (2020) is gone
    assert intel.match_domain("evil.example") is None
    assert _match(intel, "192.0.2.5").confidence == 0.5  # type: ignore[union-attr]  # most specific first
    assert intel.expire(T0 + 100) == 1
    assert _match(intel, "192.0.2.6") is None and _match(intel, "192.0.2.5") is not None


def test_vectorized_matching_agrees_with_single_lookups():
    rng = random.Random(5)
    intel = ThreatIntel()
    for _ in range(300):
        intel.add(f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}")
    for length in (8, 16, 20, 24, 28):
        intel.add(f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.0/{length}", "cidr")
    intel.add("fd00:1::/32", "cidr")
    addresses = [f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}" for _ in range(2000)]
    addresses += ["fd00:1::9", "fd00:2::9", "172.16.0.1"]
    pairs = [address_pair(a) for a in addresses]
    hi = np.array([p[0] for p in pairs], dtype=np.uint64)
    lo = np.array([p[1] for p in pairs], dtype=np.uint64)
    assert intel.match_ips(hi, lo) == [intel.match_ip(*p) for p in pairs]


# -- the detector --------------------------------------------------------------------------------------
def _frames() -> list[tuple[float, bytes, int]]:
    def f(ts: float, pkt: Any) -> tuple[float, bytes, int]:
        raw = bytes(pkt)
        return (ts, raw, len(raw))

    out = Ether(src=LAPTOP_MAC, dst=ROUTER_MAC)
    back = Ether(src=ROUTER_MAC, dst=LAPTOP_MAC)
    query = IP(src=LAPTOP_IP, dst=ROUTER_IP) / UDP(sport=33333, dport=53)
    answer = IP(src=ROUTER_IP, dst=LAPTOP_IP) / UDP(sport=53, dport=33333)
    hello_tls = bytes.fromhex(
        # a minimal TLS 1.2 ClientHello carrying SNI "c2.bad.example"
        "16030100" + "4b" + "01000047" + "0303" + "00" * 32 + "00" + "0002c02f" + "0100"
        + "001c" + "0000" + "0013" + "0011" + "00" + "000e" + "6332" + "2e626164" + "2e6578616d706c65"
        + "ff01000100"
    )  # fmt: skip
    return [
        f(T0, out / query / DNS(id=1, rd=1, qd=DNSQR(qname="www.bad.example"))),
        f(
            T0 + 0.01,
            back
            / answer
            / DNS(
                id=1,
                qr=1,
                qd=DNSQR(qname="www.bad.example"),
                an=DNSRR(rrname="www.bad.example", rdata="198.51.100.7"),
            ),
        ),
        f(T0 + 0.1, out / IP(src=LAPTOP_IP, dst="198.51.100.7") / TCP(sport=40000, dport=443, flags="S")),
        f(
            T0 + 0.2,
            out
            / IP(src=LAPTOP_IP, dst="203.0.113.9")
            / TCP(sport=40001, dport=443, flags="PA")
            / Raw(hello_tls),
        ),
        f(
            T0 + 0.3,
            out
            / IP(src=LAPTOP_IP, dst="203.0.113.10")
            / TCP(sport=40002, dport=80, flags="PA")
            / Raw(b"GET / HTTP/1.1\r\nHost: web.bad2.example:8080\r\n\r\n"),
        ),
        f(T0 + 0.4, back / IP(src="192.0.2.66", dst=LAPTOP_IP) / TCP(sport=50000, dport=22, flags="S")),
        f(T0 + 0.41, out / IP(src=LAPTOP_IP, dst="192.0.2.66") / TCP(sport=22, dport=50000, flags="RA")),
    ]


def _observe(detector: ThreatIntelDetector) -> list[Finding]:
    pipeline = Pipeline()
    ctx = context_for(pipeline, pipeline.feed(FrameBatch.from_frames(_frames())))
    return detector.observe(ctx)


def test_detector_matches_flows_dns_sni_and_host():
    intel = ThreatIntel()
    intel.add("bad.example", "domain", confidence=0.7, source="list")
    intel.add("198.51.100.0/24", "cidr", confidence=0.95, source="feed")
    intel.add("bad2.example", "domain", confidence=0.8)
    intel.add("192.0.2.66", "ip", confidence=0.6)
    findings = _observe(ThreatIntelDetector(None, intel))
    where = {(f.evidence["where"], f.peer) for f in findings}
    assert ("dns_query", "bad.example") in where  # once per (device, indicator): the first sighting
    assert ("dns_answer", "198.51.100.7") in where
    assert ("http_host", "bad2.example") in where
    assert ("flow", "192.0.2.66") in where  # inbound SSH from a listed address
    laptop = int(LAPTOP_MAC.replace(":", ""), 16)
    assert {f.device for f in findings} == {laptop}
    by_peer = {f.peer: f for f in findings}
    assert by_peer["198.51.100.7"].severity == Severity.CRITICAL
    assert by_peer["bad.example"].severity == Severity.HIGH
    assert by_peer["192.0.2.66"].evidence["direction"] == "inbound"
    # TLS SNI on its own (the domain not yet reported for this device)
    sni_only = ThreatIntel()
    sni_only.add("c2.bad.example", "domain")
    (tls,) = [f for f in _observe(ThreatIntelDetector(None, sni_only)) if f.evidence["where"] == "tls_sni"]
    assert tls.peer == "c2.bad.example"


def test_detector_respects_expiry_confidence_and_repeat():
    intel = ThreatIntel()
    intel.add("198.51.100.7", "ip", confidence=0.9, expiry=T0 - 1)  # expired before the capture
    intel.add("bad.example", "domain", confidence=0.3)
    assert _observe(ThreatIntelDetector(Settings(min_confidence=0.5), intel)) == []
    detector = ThreatIntelDetector(None, intel)
    first = _observe(detector)
    assert [f.peer for f in first] == ["bad.example"]
    assert _observe(detector) == []  # within the repeat interval
    assert ThreatIntelDetector().observe is not None  # an empty list by default
