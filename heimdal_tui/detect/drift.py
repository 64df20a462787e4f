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
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import compress
from operator import itemgetter, not_
from typing import Any, NamedTuple

from heimdal_tui.detect.activity import Activity, BatchActivity, Item, Minute, Unlearned, hour_of
from heimdal_tui.detect.learning import BaselineBook

HISTORY_POINTS = 96
DRIFT_GRACE = 60.0  # seconds an interval stays open after its end, for the answers of its flows
MAX_PENDING = 256
# Pending items (all tables) and minutes kept over all devices. Per device alone, a thousand devices
# could pend 5 x 256 items and 256 minutes each: ~55 MB in destinations alone (tracemalloc) after a
# few days of novelty nobody accepted.
# Past a total, the devices holding the most give up their oldest (DriftTracker.trim_pending).
PENDING_ITEMS_TOTAL = 65_536
PENDING_MINUTES_TOTAL = 65_536
WEIGHTS = {"destinations": 0.3, "services": 0.2, "protocols": 0.15, "countries": 0.2, "volume": 0.15}


class DriftPoint(NamedTuple):
    """A device's drift at the end of one interval (a tuple: a sensor keeps a hundred per device)."""

    ts: float
    score: float
    features: dict[str, float]  # feature -> 0..1
    moved: tuple[str, ...]  # features above 0.5, most moved first


@dataclass(slots=True)
class _Volume:
    bytes_out: float = 0.0
    minutes: int = 0
    hour: int = 0


@dataclass(slots=True)
class _Interval:
    """What every device did in one interval, per table as a set of (device, value) pairs: ``known``
    held by the device's baseline when seen (baselines only grow, so they still do when the
    interval closes), ``novel`` not held then (checked again at close: the operator may have
    accepted them meanwhile). Pairs, not a set per device: a batch's rows go in with one C-level
    ``set.update``; they are grouped by device once, when the interval is scored."""

    known: dict[str, set[tuple[int, str]]] = field(default_factory=dict)
    novel: dict[str, set[tuple[int, str]]] = field(default_factory=dict)
    volume: dict[int, _Volume] = field(default_factory=dict)


class _Seen(NamedTuple):
    """One table of a closing interval, by device: the known pairs, how many known values each
    device has, and each device's novel values."""

    known: set[tuple[int, str]]
    held: dict[int, int]
    novel: dict[int, list[str]]


def _seen(interval: _Interval, table: str) -> _Seen | None:
    """``interval``'s ``table`` grouped by device (None when nothing of it was seen)."""
    known = interval.known.get(table)
    fresh = interval.novel.get(table)
    if not known and not fresh:
        return None
    known = known or set()
    novel: dict[int, list[str]] = {}
    for device, value in fresh or ():
        values = novel.get(device)
        if values is None:
            novel[device] = [value]
        else:
            values.append(value)
    return _Seen(known, Counter(map(itemgetter(0), known)), novel)


_TABLES = ("destinations", "services", "protocols", "countries")
_FEATURES = tuple(WEIGHTS)
_STRIDE = 2 + len(_FEATURES)  # ts, score, then one value per feature
_new_point = partial(tuple.__new__, DriftPoint)


class PointHistory:
    """A device's last ``maxlen`` drift points, packed as doubles: ts, score and one value per
    feature (NaN where the interval did not measure it). About 60 bytes a point where a tuple with
    a dict of features takes 500: a sensor keeps ``HISTORY_POINTS`` of them for every device.
    Reads as a sequence of :class:`DriftPoint`; features outside ``WEIGHTS`` are not kept."""

    __slots__ = ("_values", "maxlen")

    def __init__(self, points: Iterable[DriftPoint] = (), maxlen: int = HISTORY_POINTS) -> None:
        self._values = array("d")
        self.maxlen = maxlen
        for point in points:
            self.append(point)

    def append(self, point: DriftPoint) -> None:
        features = point.features
        self._values.extend((point.ts, point.score, *(features.get(f, math.nan) for f in _FEATURES)))
        excess = len(self._values) - self.maxlen * _STRIDE
        if excess > 0:
            del self._values[:excess]

    def __len__(self) -> int:
        return len(self._values) // _STRIDE

    def __getitem__(self, index: int) -> DriftPoint:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("drift history index out of range")
        return self._point(index * _STRIDE)

    def __iter__(self) -> Iterator[DriftPoint]:
        for at in range(0, len(self._values), _STRIDE):
            yield self._point(at)

    def scores(self) -> tuple[float, ...]:
        """Every point's score, oldest first (what a sparkline needs, without making the points)."""
        return tuple(self._values[1::_STRIDE])

    def _point(self, at: int) -> DriftPoint:
        values = self._values
        features = {
            name: value
            for name, value in zip(_FEATURES, values[at + 2 : at + _STRIDE], strict=True)
            if value == value  # not NaN
        }
        return _new_point((values[at], values[at + 1], features, _moved(features)))


class PendingItems:
    """One table's novel values pending for a device, first seen first, at most ``MAX_PENDING``:
    the values as the keys of a dict (which is also the index that keeps them unique), their times
    packed in an array of doubles, their peers in a list. About 60 bytes an item besides its text,
    where an Item tuple in a list with a set beside it took 200. Reads as a sequence of Items."""

    __slots__ = ("_peers", "_ts", "_values")

    def __init__(self) -> None:
        self._values: dict[str, None] = {}
        self._ts = array("d")
        self._peers: list[str | None] = []

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __iter__(self) -> Iterator[Item]:
        for value, ts, peer in zip(self._values, self._ts, self._peers, strict=True):
            yield Item(value, ts, peer)

    def add_value(self, value: str, ts: float, peer: str | None) -> None:
        """Keep the item unless its value is pending already or the table is full."""
        if len(self._peers) >= MAX_PENDING or value in self._values:
            return
        self._values[value] = None
        self._ts.append(ts)
        self._peers.append(peer)

    def keep_newest(self, count: int) -> None:
        """Drop all but the ``count`` items seen last."""
        drop = len(self._peers) - max(count, 0)
        if drop > 0:
            self._values = dict.fromkeys(list(self._values)[drop:])
            self._ts = self._ts[drop:]
            self._peers = self._peers[drop:]


_NO_ITEMS = PendingItems()  # what a table nothing was added to reads as (never added to)


class PendingDrift:
    """A device's behaviour its baseline lacks, kept (bounded) until the operator accepts it: the
    novel items of each table, and the unlearned minutes, packed (start, bytes out, bytes in) in
    one array so that hundreds of minutes per device cost one object. Reads like an
    :class:`Activity`; a table's items are made on first use (most devices only have minutes)."""

    __slots__ = ("_minutes", "_tables")

    TABLES = ("destinations", "domains", "services", "protocols", "countries")

    def __init__(self) -> None:
        self._minutes = array("d")  # 8 bytes a value (a list of floats takes 32)
        self._tables: dict[str, PendingItems] = {}

    def items(self, table: str) -> PendingItems:
        return self._tables.get(table, _NO_ITEMS)

    destinations = property(lambda self: self.items("destinations"))
    domains = property(lambda self: self.items("domains"))
    services = property(lambda self: self.items("services"))
    protocols = property(lambda self: self.items("protocols"))
    countries = property(lambda self: self.items("countries"))

    @property
    def minutes(self) -> list[Minute]:
        packed = self._minutes
        return [Minute(packed[i], packed[i + 1], packed[i + 2]) for i in range(0, len(packed), 3)]

    @property
    def minute_count(self) -> int:
        return len(self._minutes) // 3

    def add_minute(self, start: float, bytes_out: float, bytes_in: float) -> None:
        if len(self._minutes) < 3 * MAX_PENDING:
            self._minutes.extend((start, bytes_out, bytes_in))

    def keep_newest_minutes(self, count: int) -> None:
        """Drop all but the ``count`` minutes added last."""
        drop = len(self._minutes) - 3 * max(count, 0)
        if drop > 0:
            self._minutes = self._minutes[drop:]

    def tables(self) -> list[PendingItems]:
        """The tables something was added to."""
        return list(self._tables.values())

    def wants(self, table: str, value: str) -> bool:
        """Whether ``value`` would be kept in ``table`` (not full, not pending already)."""
        items = self.items(table)
        return len(items) < MAX_PENDING and value not in items

    def add_item(self, table: str, item: Item) -> None:
        """Keep ``item`` unless its value is pending in ``table`` already or the table is full."""
        self.add_value(table, item.value, item.ts, item.peer)

    def add_value(self, table: str, value: str, ts: float, peer: str | None) -> None:
        """:meth:`add_item` without making the Item (what :meth:`wants` asks is asked here too)."""
        items = self._tables.get(table)
        if items is None:
            if table not in self.TABLES:
                raise KeyError(f"no pending table {table!r}")
            items = self._tables[table] = PendingItems()
        items.add_value(value, ts, peer)

    def as_activity(self) -> Activity:
        return Activity(
            destinations=list(self.destinations),
            services=list(self.services),
            protocols=list(self.protocols),
            countries=list(self.countries),
            minutes=self.minutes,
        )


def water_level(counts: Sequence[int], target: int) -> int:
    """The largest level ``q`` such that sum(min(c, q) for c in counts) <= ``target``."""
    ordered = sorted(counts)
    remaining = max(target, 0)
    for index, count in enumerate(ordered):
        above = len(ordered) - index  # counts from here on are all >= count
        if count * above >= remaining:
            return remaining // above
        remaining -= count
    return ordered[-1] if ordered else 0


def _moved(features: Mapping[str, float]) -> tuple[str, ...]:
    """The features at 0.5 or more, most moved first."""
    if not features or max(features.values()) < 0.5:
        return ()  # most points: nothing to sort
    return tuple(sorted((k for k, v in features.items() if v >= 0.5), key=lambda k: -features[k]))


def _point(row: Mapping[str, Any]) -> DriftPoint:
    features = {str(k): float(v) for k, v in dict(row.get("features") or {}).items()}
    return DriftPoint(float(row["ts"]), float(row["score"]), features, _moved(features))


class DriftTracker:
    """Drift points per device, one per interval of ``book.drift_interval`` seconds (the book cuts
    its rows by the same intervals). An interval is scored once, ``grace`` seconds of capture time
    after it ends: a service counts when its flow is answered, and the answer can come that long
    after the flow's first packet, whose time the row carries. Rows for an interval already scored
    are left out of it (their novel items still become pending)."""

    def __init__(
        self,
        book: BaselineBook,
        grace: float = DRIFT_GRACE,
        total_items: int = PENDING_ITEMS_TOTAL,
        total_minutes: int = PENDING_MINUTES_TOTAL,
    ) -> None:
        self.book = book
        self.total_items = total_items
        self.total_minutes = total_minutes
        self.interval = book.drift_interval
        self.grace = grace
        self.history: dict[int, PointHistory] = {}
        self.pending: dict[int, PendingDrift] = {}
        self._intervals: dict[int, _Interval] = {}  # interval index -> what was seen in it
        self._scored_before: int | None = None  # the intervals before this index are scored

    def observe(
        self, activity: Mapping[int, Activity], now: float, unlearned: dict[str, Unlearned] | None = None
    ) -> list[tuple[int, DriftPoint]]:
        """Fold one batch in; returns the points of the intervals that ``now`` closed.

        ``activity`` is the book's BatchActivity (its unlearned rows and minutes are read as
        columns), or any mapping of device to Activity, whose unlearned items are then taken one by
        one (``unlearned`` overrides). Items go to the interval of their own capture time, so a
        batch holding a whole capture gives the same points as one batch per packet.
        """
        if unlearned is None:
            unlearned = (
                activity.unlearned if isinstance(activity, BatchActivity) else self._unlearned_of(activity)
            )
        for table in _TABLES:
            rows = unlearned.get(table)
            if rows is not None and rows.devices:
                self._add_rows(table, rows)
        if isinstance(activity, BatchActivity):
            minutes = activity.minutes
            if len(minutes):
                mask = minutes.unlearned()
                self._add_minutes(
                    minutes.devices[mask].tolist(),
                    minutes.starts[mask].tolist(),
                    minutes.bytes_out[mask].tolist(),
                    minutes.bytes_in[mask].tolist(),
                )
        else:
            rows_of = [(d, m) for d, act in activity.items() for m in act.minutes if not m.learned]
            self._add_minutes(
                [d for d, _ in rows_of],
                [m.start for _, m in rows_of],
                [m.bytes_out for _, m in rows_of],
                [m.bytes_in for _, m in rows_of],
            )
        before_slot = int((now - self.grace) // self.interval)
        if self._scored_before is None or before_slot > self._scored_before:
            self.trim_pending()  # once an interval: what a batch adds is small against the totals
        return self._close(before_slot)

    def _add_minutes(
        self, devices: list[int], starts: list[float], out_bytes: list[float], in_bytes: list[float]
    ) -> None:
        interval = self.interval
        scored = self._scored_before
        pending_of = self.pending
        for device, start, out, inb in zip(devices, starts, out_bytes, in_bytes, strict=True):
            slot = int(start // interval)
            if scored is None or slot >= scored:
                volumes = self._interval(slot).volume
                volume = volumes.get(device)
                if volume is None:
                    volume = volumes[device] = _Volume()
                volume.bytes_out += out
                volume.minutes += 1
                volume.hour = hour_of(start)
            pending = pending_of.get(device)
            if pending is None:
                pending = pending_of[device] = PendingDrift()
            pending.add_minute(start, out, inb)

    def _interval(self, slot: int) -> _Interval:
        found = self._intervals.get(slot)
        if found is None:
            found = self._intervals[slot] = _Interval()
        return found

    def _add_rows(self, table: str, rows: Unlearned) -> None:
        interval = self.interval
        first, last = int(min(rows.ts) // interval), int(max(rows.ts) // interval)
        if first == last:
            parts = [(first, rows.devices, rows.values, rows.novel)]
        else:  # the batch spans intervals: split it
            slots = [int(ts // interval) for ts in rows.ts]
            parts = []
            for slot in sorted(set(slots)):
                mine = [s == slot for s in slots]
                parts.append(
                    (
                        slot,
                        list(compress(rows.devices, mine)),
                        list(compress(rows.values, mine)),
                        list(compress(rows.novel, mine)),
                    )
                )
        scored = self._scored_before
        for slot, devices, values, novel in parts:
            if scored is not None and slot < scored:
                continue  # scored already (a late answer, or a flow that ended long after it began)
            seen = self._interval(slot)
            known = seen.known.get(table)
            if known is None:
                known = seen.known[table] = set()
            if True not in novel:
                known.update(zip(devices, values, strict=True))
                continue
            fresh = seen.novel.get(table)
            if fresh is None:
                fresh = seen.novel[table] = set()
            known.update(compress(zip(devices, values, strict=True), map(not_, novel)))
            fresh.update(compress(zip(devices, values, strict=True), novel))
        if True in rows.novel:
            pending_of = self.pending
            novel_rows = compress(
                zip(rows.devices, rows.values, rows.ts, rows.peers, strict=True), rows.novel
            )
            for device, value, ts, peer in novel_rows:
                pending = pending_of.get(device)
                if pending is None:
                    pending = pending_of[device] = PendingDrift()
                pending.add_value(table, value, ts, peer)

    def _unlearned_of(self, activity: Mapping[int, Activity]) -> dict[str, Unlearned]:
        out = {table: Unlearned() for table in _TABLES}
        baselines = self.book.baselines
        for device, act in activity.items():
            base = baselines.get(device)
            for table in _TABLES:
                rows = out[table]
                known = getattr(base, table) if base is not None else None
                for item in getattr(act, table):
                    if item.learned:
                        continue
                    rows.devices.append(device)
                    rows.values.append(item.value)
                    rows.ts.append(item.ts)
                    rows.peers.append(item.peer)
                    rows.novel.append(known is not None and item.value not in known)
        return out

    def flush(self) -> list[tuple[int, DriftPoint]]:
        """End of input: score every interval still open."""
        return self._close(None)

    def _close(self, before_slot: int | None) -> list[tuple[int, DriftPoint]]:
        """Score the intervals before ``before_slot`` (all for None), once each."""
        if before_slot is None:
            before_slot = max(self._intervals, default=-1) + 1
        if self._scored_before is None or before_slot > self._scored_before:
            self._scored_before = before_slot
        points = []
        for slot in sorted(s for s in self._intervals if s < before_slot):
            seen = self._intervals.pop(slot)
            tables = [(table, found) for table in _TABLES if (found := _seen(seen, table)) is not None]
            devices: set[int] = set(seen.volume)
            for _table, found in tables:
                devices.update(found.held)
                devices.update(found.novel)
            now = (slot + 1) * self.interval
            volumes = seen.volume
            for device in sorted(devices):
                point = self._score(device, tables, volumes.get(device), now)
                if point is not None:
                    history = self.history.get(device)
                    if history is None:
                        history = self.history[device] = PointHistory()
                    history.append(point)
                    points.append((device, point))
        return points

    def _score(
        self, device: int, tables: list[tuple[str, _Seen]], volume: _Volume | None, now: float
    ) -> DriftPoint | None:
        """The device's point for the interval ending at ``now`` (``tables``: what the interval
        saw, ``volume``: the device's minutes in it): none unless its baseline was mature before
        then (what the batch's time says about maturity does not matter)."""
        base = self.book.baselines.get(device)
        if base is None or self.book.mature_at(device) >= now:
            return None
        features: dict[str, float] = {}
        for table, seen in tables:
            held = seen.held.get(device, 0)
            novel = seen.novel.get(device)
            if novel:
                # Seen: every value once; novel: those the baseline still does not hold.
                known = seen.known
                extra = [value for value in novel if (device, value) not in known]
                baseline_values = getattr(base, table)
                missing = sum(1 for value in extra if value not in baseline_values)
                total = held + len(extra)
                features[table] = missing / total
            elif held:
                features[table] = 0 / held
        if volume is not None and volume.minutes:
            median, _spread, samples = base.volume("out", volume.hour)
            if samples:
                per_minute = volume.bytes_out / volume.minutes
                ratio = (per_minute + 1.0) / (median + 1.0)
                # 0 at the median, 0.5 at 4x, 1 at 16x (symmetrically for a drop).
                features["volume"] = min(abs(math.log2(ratio)) / 4.0, 1.0)
        if not features:
            return None
        total_weight = sum(WEIGHTS[k] for k in features)
        score = sum(WEIGHTS[k] * v for k, v in features.items()) / total_weight
        return _new_point(
            (now, round(score, 3), {k: round(v, 3) for k, v in features.items()}, _moved(features))
        )

    def restore(self, histories: Mapping[int, Sequence[Mapping[str, Any]]]) -> None:
        """Put stored points (Store.drift_histories: ts, score, features; oldest first) before each
        device's history; which features moved is derived from the features again."""
        for device, stored in histories.items():
            points = [_point(row) for row in stored]
            points += self.history.get(device, ())
            self.history[device] = PointHistory(points[-HISTORY_POINTS:])

    def trim_pending(self) -> None:
        """Past ``total_items`` (``total_minutes``), cut the pending of the devices holding the most
        to one level, their oldest first, so that the total is 7/8 of the cap (room to grow before
        the next cut). A device holding little keeps all of it."""
        pending = list(self.pending.values())
        tables = [items for drift in pending for items in drift.tables()]
        counts = [len(items) for items in tables]
        if sum(counts) > self.total_items:
            level = water_level(counts, self.total_items * 7 // 8)
            for items in tables:
                items.keep_newest(level)
        counts = [drift.minute_count for drift in pending]
        if sum(counts) > self.total_minutes:
            level = water_level(counts, self.total_minutes * 7 // 8)
            for drift in pending:
                drift.keep_newest_minutes(level)

    def accept(self, device: int) -> Activity:
        """Merge the device's pending novel behaviour into its baseline; returns what was merged."""
        pending = self.pending.pop(device, None)
        merged = pending.as_activity() if pending is not None else Activity()
        self.book.learn_items(device, merged)
        return merged

    def latest(self, device: int) -> DriftPoint | None:
        points = self.history.get(device)
        return points[-1] if points else None
