"""Drift persisted: with a store attached every drift point goes to it as it is scored, an engine
attaching the store later gets each device's history back, and `analyze --data-dir` writes its
points too. All on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.cli.main import main
from heimdal_tui.detect.drift import HISTORY_POINTS, DriftPoint
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
CAPTURE = str(SAMPLES / "home_lan_incidents.pcap")
TRUTH = json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text())
PERIOD = TRUTH["learning_end_ts"] - TRUTH["capture_start_ts"]


def _engine(period: float = PERIOD) -> DetectionEngine:
    return DetectionEngine(Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=period)))


def _run(engine: DetectionEngine) -> list[tuple[int, DriftPoint]]:
    points: list[tuple[int, DriftPoint]] = []
    engine.drift_subscribers.append(lambda device, point: points.append((device, point)))
    for batch in CaptureFile(CAPTURE).batches():
        engine.feed(batch)
    engine.finish()
    return points


def _rows(points: list[tuple[int, DriftPoint]]) -> list[tuple[int, float, float, dict[str, float]]]:
    return sorted((device, p.ts, p.score, dict(p.features)) for device, p in points)


def test_points_go_to_the_attached_store_and_come_back_on_attach(tmp_path):
    with Store.open(tmp_path) as store:
        engine = _engine()
        engine.attach_store(store)
        points = _run(engine)
        assert points, "the capture gives no drift points"
        stored = store.drift_histories(limit=10_000)
        assert _rows([(d, p) for d, rows in stored.items() for p in map(_as_point, rows)]) == _rows(points)

    with Store.open(tmp_path) as store:
        again = _engine()
        again.attach_store(store)
        assert set(again.drift.history) == set(engine.drift.history)
        for device, history in engine.drift.history.items():
            assert list(again.drift.history[device]) == list(history)[-HISTORY_POINTS:]
        # Which features moved is derived again from the stored features.
        assert any(p.moved for h in again.drift.history.values() for p in h)


def test_restored_history_comes_before_new_points(tmp_path):
    with Store.open(tmp_path) as store:
        first = _engine()
        first.attach_store(store)
        _run(first)
    with Store.open(tmp_path) as store:
        second = _engine()
        second.attach_store(store)
        before = {device: list(history) for device, history in second.drift.history.items()}
        new_points = _run(second)
        device, point = new_points[-1]
        history = list(second.drift.history[device])
        assert history[-1] == point
        kept = len(before[device]) + sum(1 for d, _ in new_points if d == device)
        assert (
            history[: len(history) - sum(1 for d, _ in new_points if d == device)]
            == before[device][max(0, kept - HISTORY_POINTS) :]
        )
        # The store holds both runs' points (each device keeps its newest 1,000).
        total = sum(len(rows) for rows in store.drift_histories(limit=10_000).values())
        assert total == 2 * len(new_points)


@pytest.mark.usefixtures("_no_user_config")
def test_analyze_data_dir_saves_the_runs_drift_points(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["analyze", CAPTURE, "--format", "none", "-q", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    expected = _rows(_run(_engine(20 * 60.0)))  # analyze's default learning period
    with Store.open(data) as store:
        stored = store.drift_histories(limit=10_000)
    assert expected
    assert _rows([(d, p) for d, rows in stored.items() for p in map(_as_point, rows)]) == expected


@pytest.fixture
def _no_user_config(monkeypatch, tmp_path):
    from heimdal_tui.config import paths

    monkeypatch.setattr(paths, "default_config_path", lambda: tmp_path / "absent" / "config.toml")


def _as_point(row: dict) -> DriftPoint:
    return DriftPoint(row["ts"], row["score"], row["features"], ())
