"""Detection does not depend on how the capture is cut into batches: the same capture fed as
whole chunks (analyze), as the console's 4,096-frame slices or as 500-frame slices (live capture
hands on small batches) gives every device the same drift history (points, scores, moved features)
and the same alerts (counts, first and last seen, summaries, evidence); no drift point is scored
for a device before its baseline was mature.

Regression tests: items were once deduplicated per batch, so a batch spanning several drift
intervals gave drift fewer items than one batch per interval; and new_destination / new_port made
one finding per batch, so an alert's count was the number of batches its items came in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.drift import DriftPoint
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
CAPTURE = str(SAMPLES / "home_lan_incidents.pcap")
TRUTH = json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text())
PERIOD = TRUTH["learning_end_ts"] - TRUTH["capture_start_ts"]


def _histories(slice_frames: int | None) -> tuple[DetectionEngine, dict[int, list[tuple]]]:
    """The engine after the capture, and each device's drift history."""
    engine = DetectionEngine(Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=PERIOD)))
    points: list[tuple[int, DriftPoint]] = []
    engine.drift_subscribers.append(lambda device, point: points.append((device, point)))
    for batch in CaptureFile(CAPTURE).batches():
        if slice_frames is None:
            engine.feed(batch)
            continue
        for start in range(0, len(batch), slice_frames):
            engine.feed(batch.slice(start, start + slice_frames))
    engine.finish()
    histories: dict[int, list[tuple]] = {}
    for device, p in points:
        features = {name: round(value, 9) for name, value in p.features.items()}
        histories.setdefault(device, []).append((p.ts, round(p.score, 9), features, tuple(sorted(p.moved))))
    return engine, histories


@pytest.fixture(scope="module")
def whole() -> tuple[DetectionEngine, dict[int, list[tuple]]]:
    return _histories(None)


@pytest.mark.parametrize("slice_frames", [4096, 500])
def test_drift_histories_do_not_depend_on_batch_size(whole, slice_frames):
    _, expected = whole
    assert expected, "the sample gives no drift points: the test would prove nothing"
    _, got = _histories(slice_frames)
    assert got.keys() == expected.keys()
    for device, history in expected.items():
        assert got[device] == history, f"device {device}: drift differs with {slice_frames}-frame batches"


def test_no_drift_point_before_the_baseline_is_mature(whole):
    engine, histories = whole
    assert any(any(point[1] > 0 for point in history) for history in histories.values())
    for device, history in histories.items():
        mature = engine.book.mature_at(device)
        for ts, *_ in history:
            assert ts > mature, f"device {device} scored at {ts} before maturity at {mature}"


def _alerts(engine: DetectionEngine) -> list[tuple]:
    # The device's address is left out: it is the one it used last when the alert was updated,
    # which for the ARP spoofer (claiming the gateway's address) depends on when that was.
    return sorted(
        (
            a.kind,
            a.device.key,
            a.peer or "",
            a.count,
            a.first_seen,
            a.last_seen,
            str(a.severity),
            a.score,
            a.summary,
            repr(sorted(a.evidence.items())),
        )
        for a in engine.alerts.alerts.values()
    )


@pytest.mark.parametrize("slice_frames", [4096, 500])
def test_alerts_do_not_depend_on_batch_size(whole, slice_frames):
    engine, _ = whole
    expected = _alerts(engine)
    assert any(row[0] == "new_destination" for row in expected)
    assert any(row[0] == "new_port" and row[3] > 1 for row in expected)
    got = _alerts(_histories(slice_frames)[0])
    assert got == expected
