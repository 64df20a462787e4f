"""Alert changes reach the store gathered (heimdal_tui/detect/alert_writes.py): new alerts within a
second of capture time, refreshes within a minute, each stream one transaction, into a real SQLite
store. Nothing is lost on the way, the operator's state is never overwritten by a gathered insert,
and the end of input writes everything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.alert_writes import NEW_ALERT_INTERVAL, REFRESH_INTERVAL, AlertWrites
from heimdal_tui.detect.alerts import Alert
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.detect.model import Severity
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
TRUTH = json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text())


class CountingStore(Store):
    """A real store that counts the alert transactions it is handed (nothing else differs)."""

    records = 0
    clock: Any = None  # what to ask the capture time of each write
    times: list[float]

    def upsert_alerts(self, records: Any) -> int:
        written = super().upsert_alerts(records)
        self.times.append(self.clock())
        self.records += written
        return written


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    opened = CountingStore.open(tmp_path / "data")
    assert isinstance(opened, CountingStore)
    opened.times = []
    yield opened
    opened.close()


def alert(n: int) -> Alert:
    device = DeviceRef(n, None, f"10.0.0.{n}", None)
    return Alert(f"a{n}", "port_scan", Severity.MEDIUM, 50.0, 0.0, device, None, 0.0, 0.0, 1, "", {})


def test_new_alerts_go_within_a_second_and_refreshes_within_a_minute():
    writes = AlertWrites()
    first, second, third = alert(1), alert(2), alert(3)
    writes.add(first, new=True)
    assert writes.due(100.0) == ([first], [])  # the first new alert goes at once
    writes.add(second, new=True)
    writes.add(second, new=False)  # refreshed before its insert went: the insert carries it
    assert writes.due(100.5) == ([], [])
    assert writes.due(100.0 + NEW_ALERT_INTERVAL) == ([second], [])
    writes.add(first, new=False)
    writes.add(first, new=False)
    writes.add(third, new=True)
    assert writes.due(102.0) == ([third], [first])  # the first refresh goes at once, once
    writes.add(first, new=False)
    assert writes.due(102.0 + REFRESH_INTERVAL - 1.0) == ([], [])
    assert first.id in writes and len(writes) == 1
    assert writes.due(102.0 + REFRESH_INTERVAL) == ([], [first])
    writes.add(second, new=False)
    writes.add(third, new=True)
    assert writes.take_all() == ([third], [second])
    assert len(writes) == 0


def slices(size: int = 256) -> Iterator[FrameBatch]:
    for whole in CaptureFile(str(SAMPLES / "home_lan_incidents.pcap")).batches():
        for start in range(0, len(whole), size):
            yield whole.slice(start, start + size)


def engine_on(store: Store) -> DetectionEngine:
    period = TRUTH["learning_end_ts"] - TRUTH["capture_start_ts"]
    engine = DetectionEngine(Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=period)))
    engine.attach_store(store)
    if isinstance(store, CountingStore):
        store.clock = lambda: engine.now
    return engine


def test_alert_changes_are_gathered_and_none_is_lost(store: CountingStore):
    engine = engine_on(store)
    changes = 0
    for batch in slices():
        changes += len(engine.feed(batch))
        stored = {a["id"]: a for a in store.alerts()}
        for alert in engine.alerts.alerts.values():
            # Either the store has this alert as it is, or its change waits for the next write.
            if alert.id not in engine.alert_writes:
                assert stored[alert.id]["last_seen"] == alert.last_seen, alert.id
                assert stored[alert.id]["count"] == alert.count, alert.id
    changes += len(engine.finish())
    assert not len(engine.alert_writes)
    stored = {a["id"]: a for a in store.alerts()}
    assert stored.keys() == engine.alerts.alerts.keys()
    for alert in engine.alerts.alerts.values():
        row = stored[alert.id]
        assert (row["last_seen"], row["count"], row["state"]) == (alert.last_seen, alert.count, "open")
    # One write per interval of capture time at most, the one at the end of input aside.
    times = store.times[:-1]
    assert len(times) > 5
    assert all(b - a >= NEW_ALERT_INTERVAL for a, b in pairwise(times)), times
    assert store.records < changes, (store.records, changes)  # repeats of an alert fold into one


def test_acknowledging_an_alert_not_written_yet_keeps_the_acknowledgement(store: CountingStore):
    engine = engine_on(store)
    engine.alert_writes = AlertWrites(1e9, 1e9)  # only operator actions and the end of input write
    batches = slices()
    pending = None
    for batch in batches:
        engine.feed(batch)
        waiting = [i for i in engine.alerts.alerts if i in engine.alert_writes]
        if waiting:  # a new alert whose insert waits for the next write
            pending = waiting[0]
            break
    assert pending is not None, "no new alert ever waited for a write"
    assert store.alert(pending) is None
    engine.acknowledge(pending, reason="seen it")
    for batch in batches:
        engine.feed(batch)
    engine.finish()
    row = store.alert(pending)
    assert row is not None and row["state"] == "acknowledged"
    assert row["last_seen"] == engine.alerts.alerts[pending].last_seen
