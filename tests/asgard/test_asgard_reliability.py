"""The issue's reliability cases, over real loopback HTTP with real processes:

- Asgard down for a while, then back: every queued item delivered exactly once;
- kill -9 of the sender in the middle of a batch (Asgard holds the batch, the answer never comes):
  after a restart nothing is lost and nothing is accepted twice;
- 10,000 queued items: enqueue keeps working, status stays bounded (200 item views) and its
  memory does not grow with the queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

from asgard_support import (
    dev_server,
    failures,
    free_port,
    link_for,
    make_alert,
    received,
    start_server_process,
    stop_process,
    wait_for,
)

from heimdal_tui.asgard.devserver import FaultPlan
from heimdal_tui.asgard.queue import SyncQueue
from heimdal_tui.store import Store

SENDER = Path(__file__).resolve().parent / "asgard_sender_process.py"


def test_asgard_down_then_back_delivers_every_item_exactly_once(tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with Store.open(tmp_path / "sensor") as store:
        link = link_for(url, store, batch_size=25)
        for n in range(200):
            link.enqueue_alert(make_alert(n, ("medium", "high", "critical")[n % 3]))
        link.start()
        wait_for(lambda: failures(link) >= 3, what="three failed attempts")
        assert link.status().depth == 200
        server, _ = start_server_process(tmp_path / "asgard", port=port)
        try:
            assert link.wait_drained(60)
            status = link.status()
        finally:
            link.stop(5)
            stop_process(server)
    keys = [r["idempotency_key"] for r in received(tmp_path / "asgard")]
    assert len(keys) == len(set(keys)) == 200
    assert (status.sent, status.depth, status.dropped) == (200, 0, 0)
    # Critical first: the first batch Asgard took holds only critical alerts.
    assert {r["item"]["data"]["severity"] for r in received(tmp_path / "asgard")[:25]} == {"critical"}


def test_kill_9_mid_batch_loses_nothing_and_duplicates_nothing(tmp_path: Path):
    sensor = tmp_path / "sensor"
    with Store.open(sensor) as store:
        queue = SyncQueue(store)
        queue.enqueue([("anomaly", 20, f"item-{n:04d}", {"n": n}) for n in range(300)], now=1.0)
    faults = FaultPlan(slow=30.0, slow_first=1)  # the first batch is stored, its answer held back
    with dev_server(tmp_path / "asgard", faults) as server:
        first = subprocess.Popen([sys.executable, str(SENDER), str(sensor), server.url, "100"])
        try:
            wait_for(lambda: server.stats()["accepted"] >= 100, what="the first batch to arrive")
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
        with Store.open(sensor) as store:
            assert SyncQueue(store).depth() == 300  # the held batch was never acknowledged
        second = subprocess.run([sys.executable, str(SENDER), str(sensor), server.url, "100"], timeout=120)
        assert second.returncode == 0
        stats = server.stats()
    keys = [r["idempotency_key"] for r in received(tmp_path / "asgard")]
    assert sorted(keys) == [f"item-{n:04d}" for n in range(300)]  # each exactly once
    assert stats["duplicates"] == 100  # the batch sent again after the kill was refused, not stored
    with Store.open(sensor) as store:
        assert SyncQueue(store).depth() == 0 and store.sync_count("delivered") == 300


def _status_peak(link) -> tuple[int, int]:
    tracemalloc.start()
    try:
        status = link.status()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, len(status.items)


def test_ten_thousand_queued_items_keep_status_bounded_and_memory_flat(tmp_path: Path):
    with Store.open(tmp_path / "sensor") as store:
        link = link_for("http://127.0.0.1:9", store, queue_max_items=10_000)
        for n in range(1_000):
            assert link.enqueue_alert(make_alert(n, ("medium", "high", "critical")[n % 3]))
        small_peak, small_views = _status_peak(link)
        # The rest in bulk (the same items enqueue_alert makes, 1,000 per transaction): the test
        # is about a deep queue, and one transaction per item would only make it slow.
        assert link.queue is not None and link.anonymizer is not None
        for start in range(1_000, 10_000, 1_000):
            link.queue.enqueue(
                (
                    ("anomaly", (20, 30, 40)[n % 3], f"bulk-{n}", link.anonymizer.alert(make_alert(n)))
                    for n in range(start, start + 1_000)
                ),
            )
        status = link.status()
        big_peak, big_views = _status_peak(link)
        assert status.depth == 10_000 and status.dropped == 0
        assert small_views == big_views == 200
        assert [i.priority for i in status.items] == sorted((i.priority for i in status.items), reverse=True)
        assert {i.priority for i in status.items} == {40}  # the first 200 by priority are critical
        assert big_peak < small_peak * 1.5, (small_peak, big_peak)
        # Full: one more goes in, and the lowest priority, oldest item goes out (counted).
        lowest = min(store.sync_items(10_000), key=lambda r: (r["priority"], r["id"]))
        assert link.enqueue_alert(make_alert(20_000, "critical"))
        after = link.status()
        assert (after.depth, after.dropped) == (10_000, 1)
        assert store.sync_item(lowest["id"]) is None
