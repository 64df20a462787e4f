"""The Asgard link's queue under load: enqueue and status() cost as the queue grows to 10,000
items, the memory one status() takes, and delivery throughput to the reference server over
loopback HTTP. Run by hand: ``python3 benchmarks/asgard_queue_bench.py``; prints a markdown table
(median of ``--repeat`` runs per figure).

Enqueue and status() are measured in CPU time of this process (``time.process_time``), which other
load on a shared machine disturbs far less than the wall clock; delivery is wall clock (it waits on
a socket) and CPU time per 1,000 items (client and server share this process).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "asgard"))

from asgard_support import API_KEY, device_row, link_for, make_alert

from heimdal_tui.asgard.devserver import AsgardDevServer
from heimdal_tui.store import Store

SEVERITIES = ("medium", "high", "critical")


def fill(link, start: int, count: int) -> float:
    """Enqueue ``count`` alerts one by one (as the detection thread does); seconds per item."""
    alerts = [make_alert(n, SEVERITIES[n % 3]) for n in range(start, start + count)]
    began = time.process_time()
    for alert in alerts:
        link.enqueue_alert(alert)
    return (time.process_time() - began) / count


def status_cost(link, repeat: int = 20) -> tuple[float, int]:
    times = []
    for _ in range(repeat):
        began = time.process_time()
        link.status()
        times.append(time.process_time() - began)
    tracemalloc.start()
    link.status()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak


def one_run(depth: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Store.open(root / "sensor") as store:
            link = link_for("http://127.0.0.1:9", store, queue_max_items=depth)
            first = fill(link, 0, 1_000)
            small_status, small_peak = status_cost(link)
            last = fill(link, 1_000, depth - 2_000)
            deep = fill(link, depth - 1_000, 1_000)
            deep_status, deep_peak = status_cost(link)
            over = fill(link, depth, 1_000)  # full: every enqueue drops one item
        with Store.open(root / "deliver") as store:
            server = AsgardDevServer(root / "asgard", API_KEY).start()
            try:
                link = link_for(server.url, store, batch_size=100, queue_max_items=depth)
                fill(link, 0, 5_000)
                link.enqueue_devices([device_row(n) for n in range(1_000)])
                began, cpu = time.perf_counter(), time.process_time()
                link.start()
                assert link.wait_drained(300)
                elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
                link.stop(5)
            finally:
                server.stop()
        del last
        return {
            "enqueue_first_1k_us": first * 1e6,
            "enqueue_at_depth_us": deep * 1e6,
            "enqueue_full_us": over * 1e6,
            "status_1k_ms": small_status * 1e3,
            "status_deep_ms": deep_status * 1e3,
            "status_peak_1k_kib": small_peak / 1024,
            "status_peak_deep_kib": deep_peak / 1024,
            "deliver_items_per_s": 6_000 / elapsed,
            "deliver_cpu_ms_per_1k": cpu / 6 * 1e3,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=10_000, help="queue depth to reach (default 10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is shown (default 3)")
    args = parser.parse_args()
    runs = [one_run(args.depth) for _ in range(args.repeat)]
    print(f"| figure (median of {args.repeat}) | value |")
    print("| --- | --- |")
    labels = {
        "enqueue_first_1k_us": "enqueue_alert, queue 0 -> 1,000 (µs CPU per alert)",
        "enqueue_at_depth_us": f"enqueue_alert, queue {args.depth - 1000:,} -> {args.depth:,} (µs CPU per alert)",
        "enqueue_full_us": f"enqueue_alert, queue full at {args.depth:,}: one dropped per alert (µs CPU)",
        "status_1k_ms": "status(), 1,000 queued (ms CPU)",
        "status_deep_ms": f"status(), {args.depth:,} queued (ms CPU)",
        "status_peak_1k_kib": "status() peak Python memory, 1,000 queued (KiB)",
        "status_peak_deep_kib": f"status() peak Python memory, {args.depth:,} queued (KiB)",
        "deliver_items_per_s": "delivery to asgard-dev over loopback, batches of 100 (items/s, wall)",
        "deliver_cpu_ms_per_1k": "delivery, CPU of sender and server together (ms per 1,000 items)",
    }
    for key, label in labels.items():
        print(f"| {label} | {statistics.median(r[key] for r in runs):,.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
