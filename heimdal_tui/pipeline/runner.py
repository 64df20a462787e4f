"""Running a frame source (live interface or paced replay) through the pipeline, with statistics.

The source runs in the capture worker thread; this consumer drains the bounded buffer in large
gulps (several small live batches become one pipeline batch, which keeps per-batch overhead low)
and never blocks capture: if it falls behind, the worker drops and counts frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from heimdal_tui.capture.errors import CaptureError
from heimdal_tui.capture.source import FrameSource
from heimdal_tui.capture.worker import BatchBuffer, CaptureWorker, PacketRate
from heimdal_tui.pipeline.engine import BatchResult, Pipeline

MAX_GULP_FRAMES = 200_000


@dataclass(frozen=True, slots=True)
class RunStats:
    """A snapshot of a run's counters, safe to hand to another thread."""

    source: str
    elapsed: float
    frames: int
    wire_bytes: int
    packets_per_second: float
    bytes_per_second: float
    kernel_drops: int | None
    buffer_drops: int
    decode_errors: int
    payload_errors: int
    devices: int
    flows_open: int
    last_ts: float | None
    buffer_depth: int

    def line(self) -> str:
        kernel = "n/a" if self.kernel_drops is None else f"{self.kernel_drops:,}"
        return (
            f"{self.elapsed:7.1f}s  {self.frames:>11,} pkts  {self.packets_per_second:>9,.0f} pkt/s  "
            f"{self.bytes_per_second * 8 / 1e6:>8.2f} Mbit/s  devices {self.devices:,}  "
            f"drops kernel {kernel} buffer {self.buffer_drops:,}  decode errors {self.decode_errors:,}"
        )


class PipelineRunner:
    def __init__(self, source: FrameSource, pipeline: Pipeline, buffer: BatchBuffer | None = None) -> None:
        self.source = source
        self.pipeline = pipeline
        self.worker = CaptureWorker(source, buffer)
        self.rate = PacketRate()
        self.started = time.monotonic()
        self.on_batch: Callable[[BatchResult], None] | None = None

    def stats(self) -> RunStats:
        st = self.source.stats
        ps = self.pipeline.stats
        now = time.monotonic()
        return RunStats(
            source=self.source.describe(),
            elapsed=now - self.started,
            frames=ps.frames,
            wire_bytes=ps.wire_bytes,
            packets_per_second=self.rate.per_second(now),
            bytes_per_second=self.rate.bytes_per_second(now),
            kernel_drops=st.kernel_drops,
            buffer_drops=st.buffer_drops,
            decode_errors=ps.decode_error_count,
            payload_errors=sum(ps.app_errors.values()),
            devices=len(self.pipeline.devices),
            flows_open=len(self.pipeline.flows),
            last_ts=ps.last_ts,
            buffer_depth=self.worker.buffer.depth_frames,
        )

    def run(
        self,
        stop: threading.Event | None = None,
        duration: float | None = None,
        on_tick: Callable[[RunStats], None] | None = None,
        tick: float = 1.0,
    ) -> RunStats:
        """Consume until the source ends, ``stop`` is set or ``duration`` seconds have passed.

        Raises the source's CaptureError (no permission, interface gone, ...) if capture failed.
        """
        stop = stop or threading.Event()
        self.started = time.monotonic()
        deadline = self.started + duration if duration is not None else None
        next_tick = self.started + tick
        self.worker.start()
        buffer = self.worker.buffer
        try:
            while not stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                batch = buffer.get_all(MAX_GULP_FRAMES, timeout=min(0.25, tick))
                if batch is not None and len(batch):
                    result = self.pipeline.feed(batch)
                    self.rate.add(len(batch), time.monotonic(), nbytes=batch.wire_bytes)
                    if self.on_batch is not None:
                        self.on_batch(result)
                elif buffer.drained():
                    break
                if on_tick is not None and time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + tick
                    on_tick(self.stats())
        finally:
            self.worker.stop()
            # What the worker queued before stopping is still pipeline input.
            while (rest := buffer.get_all(MAX_GULP_FRAMES, timeout=0.0)) is not None and len(rest):
                self.pipeline.feed(rest)
            self.pipeline.finish()
        if self.worker.error is not None:
            raise self.worker.error
        return self.stats()


def describe_error(exc: CaptureError) -> str:
    return str(exc)
