"""IdleCollector: CPython's automatic full collections are held back while it runs and handed back
when it stops; once one is due at CPython's pace it runs it when the operator pauses, or at the
latest after max_defer."""

from __future__ import annotations

import gc

from heimdal_tui.console.idle_gc import HELD_BACK, IdleCollector


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


def _full_collections() -> int:
    return gc.get_stats()[2]["collections"]


def test_full_collections_wait_for_a_pause_and_thresholds_come_back():
    saved = gc.get_threshold()
    clock, middle = _Clock(), _Counter()
    collector = IdleCollector(idle=1.5, min_interval=5.0, max_defer=60.0, clock=clock, middle=middle)
    collector.start()
    try:
        assert gc.get_threshold() == (saved[0], saved[1], HELD_BACK)
        clock.now += 10.0  # past min_interval, short of max_defer
        assert not collector.maybe_collect(float("-inf"))  # idle, but CPython would not collect yet
        middle.count += saved[2]  # now it would
        last_key = clock.now - 0.2  # the operator is typing
        before = _full_collections()
        assert not collector.maybe_collect(last_key)
        assert _full_collections() == before

        clock.now += 1.5  # a pause of 1.7 s
        assert collector.maybe_collect(last_key)
        assert _full_collections() == before + 1
        assert collector.collections == 1

        middle.count += saved[2]
        clock.now += 2.0  # idle and due, but the last one was 2 s ago
        assert not collector.maybe_collect(last_key)

        clock.now += 60.0  # typing all along: after max_defer it runs anyway
        assert collector.maybe_collect(clock.now - 0.1)
        assert collector.collections == 2
    finally:
        collector.stop()
    assert gc.get_threshold() == saved
    assert not collector.maybe_collect(float("-inf"))  # stopped: CPython collects on its own again
