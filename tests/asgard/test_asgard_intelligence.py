"""Intelligence from Asgard: checked entry by entry, fed to ThreatIntel (source asgard, confidence,
expiry) and to the baseline book's golden profiles, kept in the store, applied again after a
restart, replaced by a full update, and matched by the threat_intel detector on a real capture.
Also TLS: a private CA is refused until ca_bundle names it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgard_support import dev_server, link_for, make_alert, received, wait_for

from heimdal_tui.asgard import AsgardLink
from heimdal_tui.asgard.intelligence import parse_update
from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.config import AsgardConfig
from heimdal_tui.detect.engine import DetectionEngine
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.learning import BaselineBook
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
NOW = time.time()


def intelligence(version: int, *, drop_cidr: bool = False) -> dict:
    indicators = [
        {"indicator": "cdn-metrics-sync.com", "type": "domain", "confidence": 0.95, "source": "tunnels"},
        {"indicator": "198.51.100.7", "type": "ip", "confidence": 0.6, "expiry": NOW + 86_400},
        {"indicator": "old-c2.example", "type": "domain", "confidence": 0.9, "expiry": NOW - 60},
    ]
    if not drop_cidr:
        indicators.append({"indicator": "203.0.113.0/24", "type": "cidr", "confidence": 70})
    return {
        "version": version,
        "indicators": indicators,
        "profiles": {
            "camera": {
                "version": "7",
                "services": ["tcp/554", "udp/123"],
                "protocols": ["tcp", "udp"],
                "countries": ["US"],
                "destination_categories": ["video_cloud"],
                "bytes_out_per_minute": [1000, 250000],
            }
        },
    }


@pytest.fixture
def server_dir(tmp_path: Path) -> Path:
    path = tmp_path / "asgard"
    path.mkdir()
    (path / "intelligence.json").write_text(json.dumps(intelligence(3)))
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "sensor") as opened:
        yield opened


def fetched(link: AsgardLink, version: int) -> None:
    link.start()
    wait_for(lambda: link.status().intel_version == version, what=f"intelligence v{version}")
    link.stop(5)


def test_bad_entries_are_skipped_and_named():
    update = parse_update(
        {
            "version": 5,
            "full": True,
            "indicators": [
                {"indicator": "evil.example", "type": "domain", "confidence": 0.9},
                {"indicator": "not a thing at all", "type": "domain"},
                {"indicator": "10.0.0.1", "type": "ip", "confidence": 250},
                "nonsense",
                {"indicator": "192.0.2.0/24", "type": "ip"},
            ],
            "withdrawn": [{"indicator": "gone.example", "type": "domain"}, 7],
            "profiles": {"tv": {"services": ["tcp/443"]}, "bad": {"bytes_out_per_minute": "lots"}},
        },
        since=0,
    )
    assert [i["value"] for i in update.indicators] == ["evil.example"]
    assert update.withdrawn == [("gone.example", "domain")]
    assert list(update.profiles) == ["tv"] and update.profiles["tv"]["version"] == "5"
    assert update.skipped == 6 and len(update.problems) == 6
    assert any("indicators[2]" in p and "confidence" in p for p in update.problems)
    bad: object
    for bad in ([], {"indicators": []}, {"version": "7"}, {"version": 2, "full": False}):
        with pytest.raises(ValueError):
            parse_update(bad, since=3)


def test_indicators_and_profiles_reach_the_detection_engine_and_survive_restart(
    tmp_path: Path, server_dir: Path
):
    intel, book = ThreatIntel(), BaselineBook()
    intel.add("local-list.example", "domain", source="blocklist.txt")
    with Store.open(tmp_path / "sensor") as store, dev_server(server_dir) as server:
        link = link_for(server.url, store)
        link.apply_intelligence(intel, book)
        fetched(link, 3)
        status = link.status()
    assert (status.intel_indicators, status.intel_profiles) == (3, 1)  # the expired one is not kept
    found = {i.value: i for i in intel.indicators()}
    assert found["cdn-metrics-sync.com"].source == "asgard:tunnels"
    assert found["cdn-metrics-sync.com"].confidence == 0.95
    assert found["203.0.113.0/24"].confidence == pytest.approx(0.7)
    assert found["198.51.100.7"].expiry == pytest.approx(NOW + 86_400)
    assert "old-c2.example" not in found
    assert found["local-list.example"].source == "blocklist.txt"
    assert book.profiles["camera"].label == "camera@7"
    assert book.baseline(0xAABB, 1000.0, "camera").profile == "camera@7"
    assert "tcp/554" in book.baselines[0xAABB].services

    # After a restart, with Asgard out of reach, the intelligence is applied from the store.
    again_intel, again_book = ThreatIntel(), BaselineBook()
    with Store.open(tmp_path / "sensor") as store:
        offline = AsgardLink(AsgardConfig(), store, env={})
        offline.apply_intelligence(again_intel, again_book)
        assert offline.status().intel_version == 3
    assert {i.value for i in again_intel.indicators()} == {
        "cdn-metrics-sync.com",
        "198.51.100.7",
        "203.0.113.0/24",
    }
    assert again_book.profiles["camera"].version == "7"


def test_a_full_update_replaces_asgards_share_only(store: Store, server_dir: Path):
    intel, book = ThreatIntel(), BaselineBook()
    intel.add("local-list.example", "domain", source="blocklist.txt")
    with dev_server(server_dir) as server:
        link = link_for(server.url, store)
        link.apply_intelligence(intel, book)
        fetched(link, 3)
        document = intelligence(4, drop_cidr=True)
        document["profiles"] = {}
        (server_dir / "intelligence.json").write_text(json.dumps(document))
        link = link_for(server.url, store)
        link.apply_intelligence(intel, book)
        fetched(link, 4)
    values = {i.value for i in intel.indicators()}
    assert "203.0.113.0/24" not in values
    assert {"cdn-metrics-sync.com", "local-list.example"} <= values
    assert "camera" not in book.profiles


def test_the_threat_intel_detector_matches_asgard_indicators(store: Store, server_dir: Path):
    pipeline = Pipeline()
    engine = DetectionEngine(pipeline)
    with dev_server(server_dir) as server:
        link = link_for(server.url, store)
        link.apply_intelligence(engine.intel, engine.book)
        fetched(link, 3)
    for batch in CaptureFile(str(SAMPLES / "home_lan_incidents.pcap")).batches():
        engine.process(pipeline.feed(batch))
    engine.finish()
    hits = [a for a in engine.alerts.alerts.values() if a.kind == "threat_intel"]
    assert hits and hits[0].peer == "cdn-metrics-sync.com"
    assert hits[0].evidence["source"] == "asgard:tunnels"
    assert str(hits[0].severity) == "critical"  # confidence 0.95


def _make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_is_verified_and_a_private_ca_needs_ca_bundle(store: Store, tmp_path: Path, server_dir: Path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = _make_certificate(tmp_path)
    with dev_server(server_dir, tls_cert=cert, tls_key=key) as server:
        assert server.url.startswith("https://127.0.0.1:")
        untrusted = link_for(server.url, store)
        untrusted.enqueue_alert(make_alert(1))
        untrusted.start()
        status = wait_for(lambda: (s := untrusted.status()).last_error and s, what="a TLS failure")
        untrusted.stop(5)
        assert "certificate" in (status.last_error or "").lower() and "ca_bundle" in (status.last_error or "")
        assert received(server_dir) == []
        trusted = link_for(server.url, store, ca_bundle=cert)
        trusted.start()
        assert trusted.wait_drained(20)
        trusted.stop(5)
    assert len(received(server_dir)) == 1
