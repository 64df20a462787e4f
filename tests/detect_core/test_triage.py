"""The triage flow on the engine: acknowledge, resolve, false positive feeding the baseline or the
allowlist, snooze, drift accepted into the baseline, and threshold changes without restart —
persisted in a real SQLite store with an audit trail."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.config import ConfigError
from heimdal_tui.detect.alerts import AlertState
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
TRUTH = json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text())
PERIOD = TRUTH["learning_end_ts"] - TRUTH["capture_start_ts"]


def _engine(store: Store | None = None) -> DetectionEngine:
    engine = DetectionEngine(Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=PERIOD)))
    if store is not None:
        engine.attach_store(store)
    return engine


def _replay(engine: DetectionEngine, shift: float = 0.0) -> None:
    for batch in CaptureFile(str(SAMPLES / "home_lan_incidents.pcap")).batches():
        if shift:
            batch = dataclasses.replace(batch, ts=batch.ts + shift)
        engine.feed(batch)


def _one(engine: DetectionEngine, kind: str):
    found = [a for a in engine.alerts.alerts.values() if a.kind == kind]
    assert found, f"no {kind} alert"
    return found[0]


def test_acknowledge_resolve_and_audit_in_the_store(tmp_path):
    store = Store.open(tmp_path / "data")
    engine = _engine(store)
    _replay(engine)
    scan = _one(engine, "port_scan")
    engine.acknowledge(scan.id, reason="looking")
    assert engine.alerts.alerts[scan.id].state == AlertState.ACKNOWLEDGED
    engine.resolve(scan.id, reason="plug reflashed")
    stored = store.alert(scan.id)
    assert stored is not None and stored["state"] == "resolved"
    actions = [row["action"] for row in store.audit(alert_id=scan.id)]
    assert len(actions) == 2
    store.close()


def test_false_positive_teaches_the_baseline(tmp_path):
    engine = _engine()
    _replay(engine)
    geo = _one(engine, "geo_violation")
    device = geo.device.key
    assert "RU" not in engine.book.baselines[device].countries
    with pytest.raises(ValueError):
        engine.mark_false_positive(geo.id, reason="  ")
    engine.mark_false_positive(geo.id, reason="the IPTV app is ours")
    assert "RU" in engine.book.baselines[device].countries
    entry = engine.audit[-1]
    assert entry.action == "false_positive" and entry.reason == "the IPTV app is ours"
    assert entry.detail["learned"] == {"baseline": {"countries": ["RU"]}}


def test_false_positive_allowlists_stateless_findings_and_survives_restart(tmp_path):
    store = Store.open(tmp_path / "data")
    engine = _engine(store)
    _replay(engine)
    beacon = _one(engine, "beaconing")
    engine.mark_false_positive(beacon.id, reason="printer cloud check-in")
    store.close()
    # A new engine on the same store: the same beacon an hour later raises nothing.
    store = Store.open(tmp_path / "data")
    later = _engine(store)
    _replay(later, shift=3600.0)
    again = [
        a
        for a in later.alerts.alerts.values()
        if a.kind == "beaconing" and a.peer == beacon.peer and a.device.key == beacon.device.key
    ]
    assert again == []
    assert later.alerts.suppressed > 0
    store.close()


def test_snooze_silences_until_expiry():
    engine = _engine()
    _replay(engine)
    tunnel = _one(engine, "dns_tunnel")
    rule = engine.snooze(tunnel.id, 7200.0, reason="investigating")
    assert rule.until == engine.now + 7200.0
    with pytest.raises(ValueError):
        engine.snooze(tunnel.id, 0)
    with pytest.raises(KeyError):
        engine.snooze("nope", 60)


def test_threshold_change_applies_without_restart_and_is_validated():
    engine = _engine()
    settings = engine.apply_setting("port_scan", "enabled", False)
    assert settings.enabled is False and engine.detectors["port_scan"].settings is settings
    _replay(engine)
    assert not [a for a in engine.alerts.alerts.values() if a.kind == "port_scan"]
    with pytest.raises(ConfigError):
        engine.apply_setting("port_scan", "enabled", "yes")
    with pytest.raises(KeyError):
        engine.apply_setting("no_such_detector", "enabled", True)


def test_drift_is_scored_with_features_and_can_be_accepted():
    engine = _engine()
    points: list = []
    engine.drift_subscribers.append(lambda device, point: points.append((device, point)))
    _replay(engine)
    engine.finish()
    assert points, "no drift points computed"
    tv = next(d["mac"] for d in TRUTH["devices"] if d["name"] == "tv")
    tv_key = int(tv.replace(":", ""), 16)
    history = engine.drift.history[tv_key]
    assert max(p.score for p in history) > 0
    assert any("countries" in p.features for p in history)
    merged = engine.accept_drift(tv_key, reason="new IPTV app")
    assert "RU" in merged["countries"]
    assert "RU" in engine.book.baselines[tv_key].countries
