"""Baseline drift: how far each device's current behaviour is from its baseline, and why.

Every ``interval`` seconds of capture time, for each mature device that was active, the behaviour
seen since the last point is compared with the baseline: the share of destinations, services,
protocols and countries the baseline never had, and the upload volume against the baseline median
for the hour. The score (0 = as learned, 1 = nothing like it) is a weighted mean of those features;
each point keeps which features moved. Novel items are also kept (bounded) as *pending*, so that
accepting the drift merges them into the baseline.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from heimdal_tui.detect.learning import Activity, BaselineBook, Item, Minute, hour_of

HISTORY_POINTS = 96
MAX_PENDING = 256
WEIGHTS = {"destinations": 0.3, "services": 0.2, "protocols": 0.15, "countries": 0.2, "volume": 0.15}


@dataclass(frozen=True, slots=True)
class DriftPoint:
    ts: float
    score: float
    features: dict[str, float]  # feature -> 0..1
    moved: tuple[str, ...]  # features above 0.5, most moved first


@dataclass
class _Window:
    destinations: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    protocols: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)
    bytes_out: float = 0.0
    minutes: int = 0
    hour: int = 0


class DriftTracker:
    def __init__(self, book: BaselineBook, interval: float = 300.0) -> None:
        self.book = book
        self.interval = interval
        self.history: dict[int, deque[DriftPoint]] = {}
        self.pending: dict[int, Activity] = {}
        self._windows: dict[tuple[int, int], _Window] = {}  # (device, interval index)

    def observe(self, activity: dict[int, Activity], now: float) -> list[tuple[int, DriftPoint]]:
        """Fold one batch's activity in; returns the points of the intervals that ``now`` closed.

        Items go to the interval of their own capture time, so a batch holding a whole capture gives
        the same points as one batch per packet.
        """
        interval = self.interval
        for device, act in activity.items():
            pending = self.pending.setdefault(device, Activity())
            base = self.book.baselines.get(device)
            for table in ("destinations", "services", "protocols", "countries"):
                for item in getattr(act, table):
                    if item.learned:
                        continue
                    window = self._window(device, item.ts)
                    getattr(window, table).add(item.value)
                    if base is not None and item.value not in getattr(base, table):
                        bucket: list[Item] = getattr(pending, table)
                        if len(bucket) < MAX_PENDING and all(p.value != item.value for p in bucket):
                            bucket.append(item)
            for minute in act.minutes:
                if minute.learned:
                    continue
                window = self._window(device, minute.start)
                window.bytes_out += minute.bytes_out
                window.minutes += 1
                window.hour = hour_of(minute.start)
                if len(pending.minutes) < MAX_PENDING:
                    pending.minutes.append(Minute(minute.start, minute.bytes_out, minute.bytes_in))
        return self._close(int(now // interval))

    def flush(self) -> list[tuple[int, DriftPoint]]:
        """End of input: score every interval still open."""
        return self._close(None)

    def _window(self, device: int, ts: float) -> _Window:
        return self._windows.setdefault((device, int(ts // self.interval)), _Window())

    def _close(self, before_slot: int | None) -> list[tuple[int, DriftPoint]]:
        closing = sorted(
            (key for key in self._windows if before_slot is None or key[1] < before_slot),
            key=lambda key: (key[1], key[0]),
        )
        points = []
        for device, slot in closing:
            window = self._windows.pop((device, slot))
            point = self._score(device, window, (slot + 1) * self.interval)
            if point is not None:
                self.history.setdefault(device, deque(maxlen=HISTORY_POINTS)).append(point)
                points.append((device, point))
        return points

    def _score(self, device: int, window: _Window, now: float) -> DriftPoint | None:
        base = self.book.baselines.get(device)
        if base is None or not self.book.mature(device):
            return None
        features: dict[str, float] = {}
        for table in ("destinations", "services", "protocols", "countries"):
            seen: set[str] = getattr(window, table)
            if seen:
                known = getattr(base, table)
                features[table] = sum(1 for v in seen if v not in known) / len(seen)
        if window.minutes:
            median, _spread, samples = base.volume("out", window.hour)
            if samples:
                per_minute = window.bytes_out / window.minutes
                ratio = (per_minute + 1.0) / (median + 1.0)
                # 0 at the median, 0.5 at 4x, 1 at 16x (symmetrically for a drop).
                features["volume"] = min(abs(math.log2(ratio)) / 4.0, 1.0)
        if not features:
            return None
        total_weight = sum(WEIGHTS[k] for k in features)
        score = sum(WEIGHTS[k] * v for k, v in features.items()) / total_weight
        moved = tuple(sorted((k for k, v in features.items() if v >= 0.5), key=lambda k: -features[k]))
        return DriftPoint(now, round(score, 3), {k: round(v, 3) for k, v in features.items()}, moved)

    def accept(self, device: int) -> Activity:
        """Merge the device's pending novel behaviour into its baseline; returns what was merged."""
        pending = self.pending.pop(device, Activity())
        self.book.learn_items(device, pending)
        return pending

    def latest(self, device: int) -> DriftPoint | None:
        points = self.history.get(device)
        return points[-1] if points else None
