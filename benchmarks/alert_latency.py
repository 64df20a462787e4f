"""Live alert latency: how long after the packet that completes its evidence an alert is raised.

Replays a capture through the live path - ReplaySource in the capture worker thread, the bounded
buffer, PipelineRunner draining it in gulps, a DetectionEngine fed from the runner's ``on_batch`` -
and times, for every alert raised, the wall time from the moment the replay released the frame that
completed the alert's evidence (the first frame whose capture time is at or after the finding's
``ts``) to the moment the engine published the alert. A horizontal port scan or a sweep counts
the probes nobody answered within ``answer_wait`` (5 s of capture time): its evidence is complete
that long after the probe that crossed the threshold (``ts`` + ``answer_wait_s`` of its evidence).

The learning part of the capture is replayed fast (200x; nothing in it is timed); from
``--pace-from`` seconds of capture time on, the replay is paced at ``--speed`` times real time.
Default: the bundled home-LAN incident sample, paced from the end of its learning period (20 min)
at 10x, so its seven incidents play in about 2.5 minutes.

    python3 benchmarks/alert_latency.py                    # the sample, 10x
    python3 benchmarks/alert_latency.py --speed 1          # real time (about 23 minutes)
    python3 benchmarks/alert_latency.py --capture some.pcap --pace-from 0 --learning-period 0

Prints a markdown table (p50, p95, max per alert kind, and all alerts) and the verdict against the
bar (every alert within 1 s); ``--json PATH`` also writes every measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.replay import ReplaySource
from heimdal_tui.capture.source import SourceStats
from heimdal_tui.detect.alerts import AlertChange
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.pipeline.runner import PipelineRunner

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_pcaps" / "home_lan_incidents.pcap"
BAR_SECONDS = 1.0


# The learning part plays at this speed (unpaced, a replay hands out whole 16 MiB chunks at once, so
# pacing could only start after them); released at most every 50 ms, it overshoots the switch to
# the measured speed by at most 10 s of capture time.
WARMUP_SPEED = 200.0


class TimedReplay:
    """A ReplaySource that notes when it released each batch (wall time, capture times), and that
    turns from fast (WARMUP_SPEED) to the measured speed once capture time reaches ``pace_at``."""

    live = False

    def __init__(self, path: Path, pace_at: float | None, speed: float) -> None:
        self.replay = ReplaySource([path], speed=WARMUP_SPEED if pace_at is not None else speed)
        self.pace_at = pace_at
        self.speed = speed
        self.released_at: list[float] = []  # wall time (time.monotonic) per released batch
        self.last_ts: list[float] = []  # the batch's last capture time
        self.batches_ts: list[np.ndarray] = []
        self.paced = pace_at is None
        self.lock = threading.Lock()

    @property
    def stats(self) -> SourceStats:
        return self.replay.stats

    def describe(self) -> str:
        return self.replay.describe()

    def stop(self) -> None:
        self.replay.stop()

    def batches(self) -> Iterator[FrameBatch]:
        for batch in self.replay.batches():
            if not len(batch):
                continue
            if not self.paced and self.pace_at is not None and float(batch.ts[-1]) >= self.pace_at:
                self.replay.set_speed(self.speed)  # from the next frame on
                self.paced = True
            with self.lock:
                self.released_at.append(time.monotonic())
                self.last_ts.append(float(batch.ts[-1]))
                self.batches_ts.append(np.asarray(batch.ts, dtype=np.float64).copy())
            yield batch

    def release_of(self, ts: float) -> float | None:
        """When the first frame at or after capture time ``ts`` was released."""
        with self.lock:
            i = bisect_left(self.last_ts, ts)
            if i >= len(self.last_ts):
                return None
            return self.released_at[i]


@dataclass(frozen=True, slots=True)
class Measurement:
    kind: str
    alert_id: str
    new: bool
    completed_ts: float  # capture time at which the evidence was complete
    latency: float


def run(path: Path, speed: float, pace_from: float, learning_period: float) -> tuple[list[Measurement], dict]:
    pipeline = Pipeline()
    engine = DetectionEngine(
        pipeline, DetectionSettings(learning=LearningSettings(learning_period=learning_period))
    )
    first_ts = _first_ts(path)
    source = TimedReplay(path, first_ts + pace_from if pace_from > 0 else None, speed)
    pace_start = first_ts + pace_from
    published: list[tuple[float, AlertChange]] = []
    engine.subscribers.append(lambda change: published.append((time.monotonic(), change)))
    runner = PipelineRunner(source, pipeline)  # type: ignore[arg-type]  # a FrameSource by duck typing
    runner.on_batch = engine.process
    started = time.monotonic()
    stats = runner.run()
    wall = time.monotonic() - started
    measurements = []
    for published_at, change in published:
        alert = change.alert
        ts = alert.first_seen if change.new else alert.last_seen
        ts += float(alert.evidence.get("answer_wait_s", 0.0)) if alert.kind == "port_scan" else 0.0
        if ts < pace_start:
            continue  # raised while replaying the learning part fast
        released = source.release_of(ts)
        if released is None:
            continue
        measurements.append(Measurement(alert.kind, alert.id, change.new, ts, published_at - released))
    info = {
        "capture": str(path),
        "speed": speed,
        "paced_from_s": pace_from,
        "learning_period_s": learning_period,
        "frames": stats.frames,
        "wall_s": round(wall, 1),
        "batches_released": len(source.released_at),
        "detection_busy_s": round(engine.stats.busy_seconds, 2),
        "pipeline_busy_s": round(pipeline.stats.busy_seconds, 2),
    }
    return measurements, info


def _first_ts(path: Path) -> float:
    from heimdal_tui.capture.pcap_file import CaptureFile

    for batch in CaptureFile(str(path)).batches():
        if len(batch):
            return float(batch.ts[0])
    raise SystemExit(f"{path}: holds no packets")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def table(measurements: list[Measurement]) -> str:
    rows = ["| alerts | n | p50 ms | p95 ms | max ms |", "| --- | ---: | ---: | ---: | ---: |"]
    groups: dict[str, list[float]] = {}
    for m in measurements:
        if m.new:
            groups.setdefault(m.kind, []).append(m.latency)
    for kind in sorted(groups):
        values = groups[kind]
        rows.append(
            f"| {kind} | {len(values)} | {_pct(values, 50) * 1e3:.0f} | {_pct(values, 95) * 1e3:.0f} | "
            f"{max(values) * 1e3:.0f} |"
        )
    for label, picked in (
        ("**all new alerts**", [m.latency for m in measurements if m.new]),
        ("updates (a repeat folded in)", [m.latency for m in measurements if not m.new]),
    ):
        if picked:
            rows.append(
                f"| {label} | {len(picked)} | {_pct(picked, 50) * 1e3:.0f} | {_pct(picked, 95) * 1e3:.0f} | "
                f"{max(picked) * 1e3:.0f} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--capture", type=Path, default=SAMPLE, help="pcap/pcapng to replay (default: the sample)"
    )
    parser.add_argument("--speed", type=float, default=10.0, help="pace, times real time (default 10)")
    parser.add_argument(
        "--pace-from",
        type=float,
        default=None,
        metavar="SECONDS",
        help="capture seconds replayed as fast as possible before pacing (default: the sample's learning period)",
    )
    parser.add_argument(
        "--learning-period",
        type=float,
        default=None,
        metavar="SECONDS",
        help="default: from the sample's truth file",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every measurement here")
    args = parser.parse_args(argv)
    truth = args.capture.with_suffix(".truth.json")
    period = 1200.0
    if truth.exists():
        data = json.loads(truth.read_text())
        period = float(data["learning_end_ts"] - data["capture_start_ts"])
    learning = args.learning_period if args.learning_period is not None else period
    pace_from = args.pace_from if args.pace_from is not None else learning
    measurements, info = run(args.capture, args.speed, pace_from, learning)
    new = [m.latency for m in measurements if m.new]
    print(
        f"{info['capture']}: {info['frames']:,} frames, paced at {args.speed:g}x from {pace_from:.0f} s of capture "
        f"time, {info['wall_s']} s wall; detection busy {info['detection_busy_s']} s, pipeline "
        f"{info['pipeline_busy_s']} s"
    )
    print()
    print(table(measurements))
    print()
    if not new:
        print("verdict: no alert was raised in the paced part")
        return 1
    worst = max(new)
    verdict = "PASS" if worst <= BAR_SECONDS else "FAIL"
    print(
        f"verdict: {verdict}: the slowest of {len(new)} alerts came {worst * 1e3:.0f} ms after its packet "
        f"(bar: {BAR_SECONDS:g} s)"
    )
    if args.json:
        rows = [dataclasses.asdict(m) for m in measurements]
        args.json.write_text(json.dumps({"info": info, "measurements": rows}, indent=1))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
