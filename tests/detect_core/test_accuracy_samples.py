"""On the bundled scenarios: every ground-truth incident raises an alert of its kind on its device,
and the benign capture raises nothing high or critical once baselines are mature."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.alerts import Alert
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def _truth(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.truth.json").read_text())


@cache
def _alerts(name: str, chunk: int | None = None) -> tuple[Alert, ...]:
    truth = _truth(name)
    period = truth["learning_end_ts"] - truth["capture_start_ts"]
    engine = DetectionEngine(Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=period)))
    path = str(SAMPLES / f"{name}.pcap")
    capture = CaptureFile(path, chunk_bytes=chunk) if chunk else CaptureFile(path)
    for batch in capture.batches():
        engine.feed(batch)
    engine.finish()
    assert not engine.stats.detector_errors, engine.stats.last_error
    return tuple(engine.alerts.alerts.values())


@pytest.mark.parametrize("chunk", [None, 65_536])
def test_every_incident_is_alerted_on_its_device(chunk):
    truth = _truth("home_lan_incidents")
    alerts = _alerts("home_lan_incidents", chunk)
    missing = []
    for incident in truth["incidents"]:
        mac = incident["device"]["mac"]
        hits = [
            a
            for a in alerts
            if a.kind == incident["kind"]
            and a.device.mac == mac
            and a.last_seen >= incident["start_ts"] - 1
            and a.first_seen <= incident["end_ts"] + 120
        ]
        if not hits:
            missing.append(f"{incident['kind']} on {incident['device']['name']} ({mac})")
    assert not missing, missing


def test_benign_scenario_raises_nothing_high_once_mature():
    truth = _truth("home_lan_benign")
    assert truth["incidents"] == []
    loud = [
        a
        for a in _alerts("home_lan_benign")
        if a.severity.rank >= 2 and a.first_seen >= truth["learning_end_ts"]
    ]
    assert not loud, [(a.kind, a.device.name, a.summary) for a in loud]


def test_alerts_explain_themselves_with_numbers():
    for alert in _alerts("home_lan_incidents"):
        assert alert.summary and alert.evidence, alert
        numbers = [
            v for v in alert.evidence.values() if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        assert numbers, (alert.kind, alert.evidence)
