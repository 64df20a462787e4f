"""Python's full garbage collections, held back while the operator is at the keys.

A full collection walks every object the collector tracks, in the whole process, holding the
GIL: with a 1,000-device LAN on screen (table cells, render caches) and an in-process engine beside
it, a few hundred thousand objects and 200-400 ms here, every few seconds of a replay at full
speed. A key pressed during one waits for it, whichever thread started it; they were half of the
screen switches slower than 100 ms. The young generations are still collected as usual (a few
milliseconds each, and most garbage dies there). A full collection comes due at CPython's own
pace (once the middle generation has been collected as often as its threshold says) but waits
until the console has had no key for ``idle`` seconds; it runs at the latest ``max_defer`` seconds
after the previous one, however busy the operator is, so garbage that reached the oldest
generation is freed all the same, only later (one longer pause a minute instead of one every few
seconds, for an operator who never stops typing).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def middle_collections() -> int:
    """How many times CPython has collected the middle generation so far."""
    return int(gc.get_stats()[1]["collections"])


IDLE = 1.5  # seconds without a key before a held-back full collection runs
MIN_INTERVAL = 5.0  # and no more often than this (CPython's pace under a full-speed replay: 3-5 s)
MAX_DEFER = 60.0
# The oldest generation is collected only when this many young collections have gathered: as good
# as never on its own, so the console chooses when.
HELD_BACK = 1_000_000_000


class IdleCollector:
    """Takes full collections over from CPython while started; :meth:`stop` hands them back."""

    def __init__(
        self,
        idle: float = IDLE,
        min_interval: float = MIN_INTERVAL,
        max_defer: float = MAX_DEFER,
        clock: Callable[[], float] = time.monotonic,
        middle: Callable[[], int] = middle_collections,
    ) -> None:
        self.idle = idle
        self.min_interval = min_interval
        self.max_defer = max_defer
        self.clock = clock
        self.middle = middle
        self.collections = 0
        self._saved: tuple[int, int, int] | None = None
        self._last = clock()
        self._middle_at_last = 0

    @property
    def started(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, HELD_BACK)
            self._last = self.clock()
            self._middle_at_last = self.middle()

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def due(self, last_key: float) -> bool:
        """Whether a full collection should run now, the last key having come at ``last_key``."""
        if self._saved is None or self.middle() - self._middle_at_last < self._saved[2]:
            return False  # CPython itself would not collect the oldest generation yet
        now = self.clock()
        since = now - self._last
        return since >= self.max_defer or (since >= self.min_interval and now - last_key >= self.idle)

    def maybe_collect(self, last_key: float) -> bool:
        """Run the held-back full collection when it is due; True when it ran."""
        if not self.due(last_key):
            return False
        gc.collect()
        self._last = self.clock()
        self._middle_at_last = self.middle()
        self.collections += 1
        return True
