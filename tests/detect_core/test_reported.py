"""What the behaviour detectors remember having reported: each (device, item) once, whether its hash
is still in the recent set or already packed into the sorted array."""

from __future__ import annotations

from heimdal_tui.detect.detectors import behaviour
from heimdal_tui.detect.detectors.behaviour import _Reported


def test_items_are_reported_once_whether_recent_or_packed() -> None:
    reported = _Reported(recent=8)  # packed every 8 new reports
    values = [f"10.0.{i // 256}.{i % 256}" for i in range(50)]
    for device in (1, 2):
        for value in values:
            assert not reported.already(device, value)
            assert reported.first_time(device, value)
    assert len(reported) == 100
    assert len(reported._packed) >= 96 and len(reported._recent) < 8  # most of them packed
    for device in (1, 2):
        for value in values:
            assert reported.already(device, value)
            assert not reported.first_time(device, value)
    # The same value for another device is a different item.
    assert not reported.already(3, values[0]) and reported.first_time(3, values[0])
    assert len(reported) == 101


def test_past_the_cap_a_device_still_reports_but_is_not_remembered(monkeypatch) -> None:
    monkeypatch.setattr(behaviour, "MAX_REPORTED", 5)
    reported = _Reported(recent=2)  # packed every 2 new reports
    assert all(reported.first_time(7, f"v{i}") for i in range(8))
    assert [reported.already(7, f"v{i}") for i in range(8)] == [True] * 5 + [False] * 3
    assert reported.first_time(7, "v6")  # not remembered: reported again
    assert reported.first_time(8, "v0")  # the cap is per device
    assert len(reported) == 6


def test_packing_keeps_the_array_sorted_and_unique() -> None:
    reported = _Reported(recent=3)  # packed every 3 new reports
    for i in range(30):
        reported.first_time(i % 4, f"name-{i}")
    packed = reported._packed.tolist()
    assert packed == sorted(set(packed)) and len(packed) + len(reported._recent) == 30
