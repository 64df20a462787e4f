"""The thresholds what-if's recent history: what it keeps, what it counts, what it drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from heimdal_tui.detect.activity import BatchActivity
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.harness import BatchDeviceRefs, contexts
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.detect.whatif import APP_EVENT_BYTES, RecentHistory, what_if
from heimdal_tui.pipeline.engine import Pipeline

SAMPLE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "home_lan_incidents.pcap"


@pytest.fixture(scope="module")
def fed() -> tuple[DetectionEngine, RecentHistory, list[int]]:
    pipeline = Pipeline()
    engine = DetectionEngine(pipeline, DetectionSettings(learning=LearningSettings(learning_period=600.0)))
    history = RecentHistory(max_bytes=1 << 40, max_seconds=1e9)
    drift_rows = []
    for ctx in contexts([str(SAMPLE)], pipeline=pipeline, chunk_bytes=256 * 1024):
        engine.process_context(ctx)
        activity = engine.book.activity
        assert isinstance(activity, BatchActivity)
        drift_rows.append(sum(len(u.devices) for u in activity.unlearned.values()))
        history.add(ctx, activity)
    return engine, history, drift_rows


def test_history_keeps_no_drift_rows_and_no_caches(fed) -> None:
    _engine, history, drift_rows = fed
    assert sum(drift_rows) > 0  # the capture does give drift rows...
    for step in history.steps():
        assert isinstance(step.activity, BatchActivity)
        assert step.activity.unlearned == {}  # ...which the history does not keep
        assert step.activity._made is None
        # Nor the batch's ranking of every device's addresses (made for its alerts' device refs).
        assert isinstance(step.ctx.device_ref, BatchDeviceRefs)
        assert step.ctx.device_ref.first_ips is None
    assert any(step.ctx.device_ref.refs for step in history.steps())  # the refs made stay


def test_history_counts_columns_messages_and_rows(fed) -> None:
    _engine, history, _ = fed
    steps = history.steps()
    for step in steps:
        columns = (
            step.ctx.packets.estimated_size()
            + step.ctx.new_flows.estimated_size()
            + step.ctx.ended_flows.estimated_size()
        )
        assert (
            step.nbytes
            == columns + APP_EVENT_BYTES * len(step.ctx.app_events) + step.activity.estimated_size()
        )
    assert history.nbytes == sum(step.nbytes for step in steps)
    assert any(step.ctx.app_events for step in steps) and any(
        step.activity.estimated_size() > 64 for step in steps
    )


def test_history_drops_the_oldest_past_its_bound(fed) -> None:
    _engine, full, _ = fed
    steps = full.steps()
    bound = sum(step.nbytes for step in steps[-3:])
    small = RecentHistory(max_bytes=bound, max_seconds=1e9)
    for step in steps:
        small.add(step.ctx, step.activity)
    assert len(small) == 3 and small.nbytes == bound
    assert small.span == (steps[-3].ctx.first_ts, steps[-1].ctx.now)


def test_what_if_over_the_slim_history_matches_the_engine(fed) -> None:
    engine, history, _ = fed
    settings = engine.detectors["port_scan"].settings
    window = engine.settings.correlation_window
    result = what_if("port_scan", settings, settings, history, engine.book, engine.intel, window)
    raised = sum(1 for alert in engine.alerts.alerts.values() if alert.kind == "port_scan")
    assert result["current"] == result["proposed"] == raised > 0
