"""A device's drift history: packed points that read back as the points that went in."""

from __future__ import annotations

import pytest

from heimdal_tui.detect.activity import Item
from heimdal_tui.detect.drift import HISTORY_POINTS, MAX_PENDING, DriftPoint, PendingDrift, PointHistory


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
