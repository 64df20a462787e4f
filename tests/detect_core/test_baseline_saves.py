"""Baseline saves write only what changed (heimdal_tui/detect/baseline_saves.py), into a real SQLite
store: what the store holds always equals what the sensor learned, last_seen at most an hour
stale, and a mature LAN stops rewriting its baselines every minute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.baseline import Baseline
from heimdal_tui.detect.baseline_saves import LAST_SEEN_SLACK, SaveTracker
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def learned(data: dict[str, Any]) -> dict[str, Any]:
    """A baseline's dict as JSON gives it back, without last_seen."""
    return {k: v for k, v in json.loads(json.dumps(data)).items() if k not in ("last_seen", "device")}


def stored(store: Store, key: int) -> dict[str, Any]:
    data = store.load_baseline(key)
    assert data is not None, f"the store has no baseline for {key}"
    return data


@pytest.fixture
def store(tmp_path: Path):
    opened = Store.open(tmp_path / "data")
    yield opened
    opened.close()


def test_only_changed_baselines_are_written(store: Store):
    tracker = SaveTracker()
    books = {1: Baseline(device=1, first_seen=100.0, last_seen=100.0), 2: Baseline(2, 100.0, 100.0)}
    assert tracker.save(books, store.save_baselines) == 2
    assert tracker.save(books, store.save_baselines) == 0

    books[1].learn("destinations", "203.0.113.9")
    assert tracker.save(books, store.save_baselines) == 1
    assert stored(store, 1)["destinations"] == {"203.0.113.9": 1}

    books[1].learn("destinations", "203.0.113.9")  # a count moved in place
    books[2].frozen = True
    assert tracker.save(books, store.save_baselines) == 2
    assert stored(store, 1)["destinations"] == {"203.0.113.9": 2}
    assert stored(store, 2)["frozen"] is True

    books[2].learn_minute(160.0, 0, 1_000.0, 50.0)
    assert tracker.save(books, store.save_baselines) == 1
    assert stored(store, 2)["volume_out"] == {"0": [1_000.0]}


def test_last_seen_alone_waits_for_the_slack_or_a_final_save(store: Store):
    tracker = SaveTracker()
    books = {1: Baseline(device=1, first_seen=0.0, last_seen=0.0)}
    tracker.save(books, store.save_baselines)
    books[1].last_seen = LAST_SEEN_SLACK - 1.0
    assert tracker.save(books, store.save_baselines) == 0
    assert stored(store, 1)["last_seen"] == 0.0
    books[1].last_seen = LAST_SEEN_SLACK
    assert tracker.save(books, store.save_baselines) == 1
    assert stored(store, 1)["last_seen"] == LAST_SEEN_SLACK
    books[1].last_seen += 5.0
    assert tracker.save(books, store.save_baselines) == 0
    assert tracker.save(books, store.save_baselines, final=True) == 1
    assert stored(store, 1)["last_seen"] == LAST_SEEN_SLACK + 5.0
    assert tracker.save(books, store.save_baselines, final=True) == 0


def test_a_failed_write_is_tried_again_and_a_forgotten_one_written_again(store: Store):
    tracker = SaveTracker()
    books = {1: Baseline(device=1, first_seen=0.0), 2: Baseline(device=2, first_seen=0.0)}

    def refuse(items: Any) -> None:
        next(iter(items))  # the write took one item, then failed
        raise OSError("no space left on device")

    with pytest.raises(OSError):
        tracker.save(books, refuse)
    assert tracker.save(books, store.save_baselines) == 2
    tracker.forget(1)  # the operator reset it: the store no longer has it
    assert tracker.save(books, store.save_baselines) == 1
    del books[2]
    assert tracker.save(books, store.save_baselines) == 0
    assert len(tracker) == 1


def _engine(period: float) -> DetectionEngine:
    return DetectionEngine(Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=period)))


def test_a_mature_lan_stops_rewriting_its_baselines_and_the_store_keeps_up(store: Store):
    truth = json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text())
    period = truth["learning_end_ts"] - truth["capture_start_ts"]
    engine = _engine(period)
    engine.attach_store(store)
    written_learning = written_mature = saves_mature = 0
    for whole in CaptureFile(str(SAMPLES / "home_lan_incidents.pcap")).batches():
        for start in range(0, len(whole), 256):  # ~90 batches, a save after each
            engine.feed(whole.slice(start, start + 256))
            count = engine.save_baselines()  # a save after every batch: far more often than the sensor
            if engine.now < truth["learning_end_ts"] + 60.0:
                written_learning += count
            else:
                written_mature += count
                saves_mature += 1
            stored = store.all_baselines()
            assert stored.keys() == engine.book.baselines.keys()
            for key, base in engine.book.baselines.items():
                assert learned(stored[key]) == learned(base.to_dict()), key
                assert 0.0 <= base.last_seen - stored[key]["last_seen"] < LAST_SEEN_SLACK
    engine.finish()
    devices = len(engine.book.baselines)
    assert saves_mature > 5 and written_learning >= devices
    # Rewriting every baseline every save would be devices x saves; what changes is a handful.
    assert written_mature < devices * saves_mature / 5, (written_mature, devices, saves_mature)

    engine.save_baselines(final=True)
    assert store.all_baselines() == {
        k: json.loads(json.dumps(b.to_dict())) for k, b in engine.book.baselines.items()
    }

    again = _engine(period)
    again.attach_store(store)
    assert again.load_baselines(store) == devices
    assert again.save_baselines() == 0  # what was just loaded is what the store holds
    assert again.save_baselines(final=True) == 0
