"""The shortcuts of issue 3's third speed pass give what the plain per-row code gives.

Each test compares a shortcut with the straightforward computation it replaced: drift's rows kept
as (device, value) pairs and grouped by device when the interval is scored, pending items added
without making Items, a batch's DNS queries found once for everyone who reads them, and each
event's sender resolved once per source. A wrong shortcut changes a feature, a pending item, a
query or a sender here."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.decode.app.dns import DnsMessage
from heimdal_tui.decode.app.ssdp import SsdpMessage
from heimdal_tui.decode.app_select import AppEvent
from heimdal_tui.detect.activity import BatchActivity, Unlearned
from heimdal_tui.detect.baseline import Baseline
from heimdal_tui.detect.drift import _TABLES, MAX_PENDING, DriftTracker
from heimdal_tui.detect.harness import DeviceRefs, context_for
from heimdal_tui.detect.learning import BaselineBook, LearningSettings
from heimdal_tui.pipeline.engine import Pipeline

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
CAPTURES = [str(SAMPLES / "home_lan_incidents.pcap"), str(SAMPLES / "home_lan_benign.pcap")]
INTERVAL = 300.0


def _book(rng: random.Random, devices: list[int], values: list[str]) -> BaselineBook:
    """Mature baselines (the sensor started at 0, learning for 60 s) holding some of ``values``."""
    book = BaselineBook(LearningSettings(learning_period=60.0), drift_interval=INTERVAL)
    book.sensor_start = 0.0
    for device in devices:
        base = book.baselines[device] = Baseline(device, 0.0, 0.0)
        for table in _TABLES:
            getattr(base, table).update(dict.fromkeys(rng.sample(values, 6), 1))
    return book


def _batches(
    rng: random.Random, devices: list[int], values: list[str], book: BaselineBook, size: int = 40
) -> Iterator[tuple[BatchActivity, float]]:
    """Batches of unlearned rows (some spanning two intervals, values repeating across batches),
    each row flagged novel when its device's baseline lacks the value, as the book flags them."""
    start = 60.0
    for _ in range(24):
        end = start + rng.choice((40.0, 90.0, 400.0))
        unlearned = {}
        for table in _TABLES:
            rows = Unlearned()
            for _ in range(rng.randrange(0, size)):
                device, value = rng.choice(devices), rng.choice(values)
                rows.devices.append(device)
                rows.values.append(value)
                rows.ts.append(rng.uniform(start, end))
                rows.peers.append(f"peer-{value}")
                rows.novel.append(value not in getattr(book.baselines[device], table))
            unlearned[table] = rows
        yield BatchActivity(list(devices), unlearned=unlearned), end
        start = end


class _Expected:
    """Drift features made with one set of values per (interval, device, table), scored against
    the baselines as they are when the interval closes."""

    def __init__(self, book: BaselineBook) -> None:
        self.book = book
        self.held: dict[tuple[int, int, str], set[str]] = {}
        self.novel: dict[tuple[int, int, str], set[str]] = {}

    def add(self, activity: BatchActivity) -> None:
        for table, rows in activity.unlearned.items():
            for device, value, ts, flag in zip(rows.devices, rows.values, rows.ts, rows.novel, strict=True):
                key = (int(ts // INTERVAL), device, table)
                (self.novel if flag else self.held).setdefault(key, set()).add(value)

    def features(self, device: int, ts: float) -> dict[str, float]:
        slot = round(ts / INTERVAL) - 1
        features = {}
        for table in _TABLES:
            known = self.held.get((slot, device, table), set())
            fresh = self.novel.get((slot, device, table), set())
            if not known and not fresh:
                continue
            extra = fresh - known
            baseline = getattr(self.book.baselines[device], table)
            missing = len([value for value in extra if value not in baseline])
            features[table] = round(missing / (len(known) + len(extra)), 3)
        return features


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drift_features_are_those_of_one_set_of_values_per_device(seed: int) -> None:
    rng = random.Random(seed)
    devices = [11, 12, 13, 14, 15]
    values = [f"v{i}" for i in range(30)]
    book = _book(rng, devices, values)
    tracker = DriftTracker(book, grace=0.0)
    expected = _Expected(book)
    scored = 0
    for activity, now in _batches(rng, devices, values, book):
        expected.add(activity)
        for device, point in tracker.observe(activity, now):
            assert point.features == expected.features(device, point.ts)
            scored += 1
        # The operator accepts a value: rows flagged novel before may be known in later batches,
        # and a value novel when seen may be held by the baseline when its interval closes.
        for _ in range(3):
            base = book.baselines[rng.choice(devices)]
            getattr(base, rng.choice(_TABLES))[rng.choice(values)] = 1
    for device, point in tracker.flush():
        assert point.features == expected.features(device, point.ts)
        scored += 1
    assert scored > 20


def test_pending_items_are_the_first_novel_rows_of_each_value() -> None:
    rng = random.Random(9)
    devices = [21, 22]
    values = [f"w{i}" for i in range(MAX_PENDING + 40)]
    book = _book(rng, devices, values[:20])
    tracker = DriftTracker(book)
    expected: dict[tuple[int, str], list[tuple[str, float, str | None]]] = {}
    for activity, now in _batches(rng, devices, values, book, size=400):
        tracker.observe(activity, now)
        for table, rows in activity.unlearned.items():
            for i in range(len(rows.devices)):
                kept = expected.setdefault((rows.devices[i], table), [])
                if rows.novel[i] and len(kept) < MAX_PENDING and rows.values[i] not in [k[0] for k in kept]:
                    kept.append((rows.values[i], rows.ts[i], rows.peers[i]))
    for (device, table), kept in expected.items():
        pending = tracker.pending.get(device)
        got = list(pending.items(table)) if pending is not None else []
        assert [(item.value, item.ts, item.peer) for item in got] == kept
    assert any(len(kept) == MAX_PENDING for kept in expected.values())


def test_pending_stays_within_its_totals_over_all_devices() -> None:
    rng = random.Random(4)
    devices = [31, 32, 33, 34]
    values = [f"x{i}" for i in range(MAX_PENDING)]
    book = _book(rng, devices, values[:10])
    tracker = DriftTracker(book, total_items=120, total_minutes=1_000)
    trims = 0
    for activity, now in _batches(rng, devices, values, book, size=400):
        before = tracker._scored_before
        tracker.observe(activity, now)
        total = sum(len(items) for drift in tracker.pending.values() for items in drift.tables())
        if tracker._scored_before != before:  # a new interval: the totals were applied
            assert total <= 120 * 7 // 8
            trims += 1
    assert trims > 3


def _contexts(path: str) -> list:
    pipeline = Pipeline()
    return [
        context_for(pipeline, pipeline.feed(batch))
        for batch in CaptureFile(path, chunk_bytes=65_536).batches()
    ]


@pytest.mark.parametrize("path", CAPTURES)
def test_a_batchs_dns_queries_are_the_events_checked_one_by_one(path: str) -> None:
    found = 0
    for ctx in _contexts(path):
        expected = [
            i
            for i, ev in enumerate(ctx.app_events)
            if isinstance(ev.message, DnsMessage) and not ev.message.is_response and ev.dport in (53, 5355)
        ]
        assert ctx.dns_queries() == expected
        assert ctx.dns_queries() is ctx.dns_queries()  # found once
        found += len(expected)
    assert found


def test_dns_queries_leave_out_answers_mdns_and_other_messages() -> None:
    ctx = _contexts(CAPTURES[0])[0]
    query = DnsMessage(1, False, 0, 0, (("example.com", 1),), (), (), ())
    answer = dataclasses.replace(query, is_response=True)
    event = AppEvent(0, 1.0, 17, 0, 1, 0, 2, 3, 4, 40000, 53, query)
    events = [
        event,
        dataclasses.replace(event, message=answer),  # an answer sent to port 53
        dataclasses.replace(event, dport=5353),  # mDNS
        dataclasses.replace(event, dport=5355),  # LLMNR
        dataclasses.replace(event, dport=53, proto=6),  # over TCP
        dataclasses.replace(event, message=SsdpMessage("M-SEARCH", None, None, None, None, None)),
    ]
    ctx = dataclasses.replace(ctx, app_events=events, app_devices=[None] * len(events))
    assert ctx.dns_queries() == [0, 3, 4]


def test_senders_resolved_once_per_source_are_each_events_sender() -> None:
    pipeline = Pipeline()
    refs = DeviceRefs(pipeline)
    events = 0
    for batch in CaptureFile(CAPTURES[0], chunk_bytes=65_536).batches():
        result = pipeline.feed(batch)
        got = refs.senders_of(result.app_events)
        assert got == [pipeline.directory.sender(ev) for ev in result.app_events]
        events += len(got)
    assert events > len(refs.senders)  # sources repeat: each was resolved once
    assert any(s is not None for s in refs.senders.values())
