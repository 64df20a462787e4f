"""A device's drift history: packed points that read back as the points that went in."""

from __future__ import annotations

import random

import pytest

from heimdal_tui.detect.activity import Item
from heimdal_tui.detect.drift import (
    HISTORY_POINTS,
    MAX_PENDING,
    DriftPoint,
    DriftTracker,
    PendingDrift,
    PointHistory,
    water_level,
)
from heimdal_tui.detect.learning import BaselineBook, LearningSettings


def _point(ts: float, **features: float) -> DriftPoint:
    moved = tuple(sorted((k for k, v in features.items() if v >= 0.5), key=lambda k: -features[k]))
    return DriftPoint(ts, round(sum(features.values()) / max(len(features), 1), 3), features, moved)


def test_points_read_back_as_they_went_in_with_only_the_features_measured():
    points = [
        _point(300.0, destinations=0.0, volume=0.25),
        _point(600.0, destinations=0.9, services=0.5, protocols=0.0, countries=1.0, volume=0.0),
        _point(900.0),  # nothing measured
    ]
    history = PointHistory(points)
    assert len(history) == 3 and list(history) == points
    assert (
        history[-1] == points[2]
        and history[0] == points[0]
        and history[1].moved
        == (
            "countries",
            "destinations",
            "services",
        )
    )
    assert "services" not in history[0].features  # absent stays absent, not 0
    assert history.scores() == tuple(p.score for p in points)
    with pytest.raises(IndexError):
        history[3]
    with pytest.raises(IndexError):
        history[-4]


def test_the_history_keeps_only_the_newest_points():
    history = PointHistory(maxlen=4)
    for i in range(10):
        history.append(_point(float(i), volume=i / 10))
    assert [p.ts for p in history] == [6.0, 7.0, 8.0, 9.0]
    assert history[0].features == {"volume": 0.6}
    assert len(PointHistory(_point(float(i)) for i in range(HISTORY_POINTS + 5))) == HISTORY_POINTS


def test_pending_minutes_are_kept_packed_and_bounded():
    pending = PendingDrift()
    for i in range(300):
        pending.add_minute(60.0 * i, 1000.0 + i, 10.0)
    assert pending.minute_count == 256
    assert pending.minutes[0] == (0.0, 1000.0, 10.0, False) and pending.minutes[-1].start == 60.0 * 255


def test_pending_items_stay_unique_in_first_seen_order_up_to_the_cap():
    pending = PendingDrift()
    assert len(pending.destinations) == 0 and pending.wants("destinations", "1.1.1.1")
    pending.add_item("destinations", Item("1.1.1.1", 10.0, "dns.example"))
    pending.add_item("destinations", Item("1.1.1.1", 20.0, "other"))  # pending already: kept as first
    pending.add_item("countries", Item("RU", 30.0))
    assert list(pending.destinations) == [Item("1.1.1.1", 10.0, "dns.example")]
    assert not pending.wants("destinations", "1.1.1.1") and pending.wants("services", "tcp/22")
    for i in range(MAX_PENDING + 10):
        pending.add_item("services", Item(f"tcp/{i}", float(i)))
    assert len(pending.services) == MAX_PENDING and not pending.wants("services", "tcp/99999")
    assert [item.value for item in pending.services][:3] == ["tcp/0", "tcp/1", "tcp/2"]
    merged = pending.as_activity()
    assert merged.countries == [Item("RU", 30.0)] and len(merged.services) == MAX_PENDING
    with pytest.raises(KeyError):
        pending.add_item("nonsense", Item("x", 1.0))


@pytest.mark.parametrize("seed", range(20))
def test_the_water_level_is_the_highest_that_fits(seed: int):
    rng = random.Random(seed)
    counts = [rng.randint(0, 300) for _ in range(rng.randint(0, 40))]
    target = rng.randint(0, sum(counts) + 50)
    level = water_level(counts, target)
    assert sum(min(c, level) for c in counts) <= target
    if counts and level < max(counts):
        assert sum(min(c, level + 1) for c in counts) > target


def _pend(tracker: DriftTracker, device: int, items: int, minutes: int) -> None:
    pending = tracker.pending.setdefault(device, PendingDrift())
    for i in range(items):
        pending.add_value("destinations", f"203.0.113.{i}", float(i), None)
    for i in range(minutes):
        pending.add_minute(60.0 * i, float(i), 0.0)


def test_past_the_totals_the_devices_holding_most_give_up_their_oldest():
    tracker = DriftTracker(BaselineBook(LearningSettings()), total_items=400, total_minutes=200)
    _pend(tracker, 1, items=10, minutes=5)  # holds little: keeps it all
    for device in (2, 3, 4):
        _pend(tracker, device, items=200, minutes=100)
    tracker.trim_pending()
    items = {d: list(p.destinations) for d, p in tracker.pending.items()}
    assert len(items[1]) == 10 and tracker.pending[1].minute_count == 5
    assert sum(len(v) for v in items.values()) <= 400 * 7 // 8
    assert sum(p.minute_count for p in tracker.pending.values()) <= 200 * 7 // 8
    level = len(items[2])
    assert level == len(items[3]) == len(items[4]) > 100
    # The newest stay, in first-seen order, their times and peers with them.
    assert [i.value for i in items[2]] == [f"203.0.113.{i}" for i in range(200 - level, 200)]
    assert [i.ts for i in items[2]] == [float(i) for i in range(200 - level, 200)]
    minutes = tracker.pending[2].minutes
    assert minutes[-1].start == 60.0 * 99 and minutes[0].start == 60.0 * (100 - len(minutes))
    # Under the totals nothing moves; a trimmed value seen again is pending again, as new.
    tracker.trim_pending()
    assert {d: list(p.destinations) for d, p in tracker.pending.items()} == items
    assert tracker.pending[2].wants("destinations", "203.0.113.0")
