"""BatchBuffer, CaptureWorker and PacketRate."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from heimdal_tui.capture.errors import CaptureError
from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.replay import ReplaySource
from heimdal_tui.capture.source import FrameSource, SourceStats
from heimdal_tui.capture.worker import BatchBuffer, CaptureWorker, PacketRate


def make_batch(first: int, count: int) -> FrameBatch:
    """``count`` frames whose payload is their sequence number (8 bytes, big-endian)."""
    return FrameBatch.from_frames(
        [(float(first + k), (first + k).to_bytes(8, "big"), 8) for k in range(count)]
    )


def numbers(batch: FrameBatch) -> list[int]:
    return [int.from_bytes(batch.frame(i), "big") for i in range(len(batch))]


class FakeSource:
    """A fake FrameSource that yields ready-made batches as fast as it can (no files, no sockets),
    optionally failing after a number of batches: it exercises the worker, not capture itself."""

    def __init__(
        self,
        batch_count: int,
        batch_size: int,
        live: bool,
        fail_after: int | None = None,
        error: Exception | None = None,
    ) -> None:
        self.batch_count = batch_count
        self.batch_size = batch_size
        self.live = live
        self.stats = SourceStats()
        self.fail_after = fail_after
        self.error = error or CaptureError("interface eth9 went away")
        self.stopped = threading.Event()
        self.produced_at: float | None = None

    def batches(self) -> Iterator[FrameBatch]:
        for n in range(self.batch_count):
            if self.stopped.is_set():
                return
            if self.fail_after is not None and n == self.fail_after:
                raise self.error
            batch = make_batch(n * self.batch_size, self.batch_size)
            self.stats.count(batch)
            yield batch
        self.produced_at = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()

    def describe(self) -> str:
        return "fake source"


def test_fake_source_satisfies_the_protocol() -> None:
    source: FrameSource = FakeSource(1, 1, live=True)
    assert source.describe() == "fake source"


def test_lossless_buffer_loses_nothing_under_a_slow_consumer() -> None:
    source = FakeSource(batch_count=100, batch_size=10, live=False)
    worker = CaptureWorker(source, BatchBuffer(max_frames=30, lossless=True))
    assert worker.buffer.lossless
    worker.start()
    got: list[int] = []
    for batch in worker.batches():
        assert worker.buffer.depth_frames <= 30
        got.extend(numbers(batch))
        time.sleep(0.001)
    assert got == list(range(1000))
    assert worker.buffer.dropped_frames == 0
    assert source.stats.buffer_drops == 0
    assert worker.error is None
    assert worker.done.is_set()


def test_replay_gets_a_lossless_buffer_by_default(tmp_path: Path) -> None:
    packets = []
    for k in range(300):
        p = Ether() / IP(dst="10.0.0.2") / UDP(dport=53) / k.to_bytes(4, "big")
        p.time = 1_700_000_000 + k * 0.001
        packets.append(p)
    path = str(tmp_path / "r.pcap")
    wrpcap(path, packets)
    worker = CaptureWorker(ReplaySource([path], batch_frames=16))
    assert worker.buffer.lossless
    worker.start()
    frames = 0
    for batch in worker.batches():
        frames += len(batch)
    assert frames == 300
    assert worker.name == "heimdal-capture"


def test_lossy_buffer_counts_drops_and_never_blocks_the_producer() -> None:
    source = FakeSource(batch_count=500, batch_size=100, live=True)
    worker = CaptureWorker(source, BatchBuffer(max_frames=1000))
    assert not worker.buffer.lossless
    worker.start()
    # Nobody reads: the producer must still run to its end without waiting for room.
    assert worker.done.wait(2.0)
    assert source.produced_at is not None
    buffer = worker.buffer
    assert buffer.depth_frames == 1000
    assert buffer.dropped_frames == 49_000
    assert source.stats.buffer_drops == buffer.dropped_frames
    received = [n for batch in worker.batches() for n in numbers(batch)]
    assert received == list(range(1000))  # the oldest batches are kept, later ones dropped whole
    assert worker.error is None


def test_source_error_surfaces_as_worker_error() -> None:
    source = FakeSource(batch_count=10, batch_size=5, live=True, fail_after=2)
    worker = CaptureWorker(source)
    worker.start()
    frames = sum(len(b) for b in worker.batches())
    assert frames == 10
    assert isinstance(worker.error, CaptureError)
    assert "went away" in str(worker.error)
    assert worker.done.is_set()
    assert worker.buffer.closed


def test_unexpected_exception_is_wrapped() -> None:
    source = FakeSource(batch_count=10, batch_size=5, live=False, fail_after=0, error=RuntimeError("boom"))
    worker = CaptureWorker(source)
    worker.start()
    assert list(worker.batches()) == []
    assert isinstance(worker.error, CaptureError)
    assert "RuntimeError: boom" in str(worker.error)
    assert isinstance(worker.error.__cause__, RuntimeError)


def test_stop_with_a_stalled_lossless_consumer_is_prompt() -> None:
    source = FakeSource(batch_count=1_000_000, batch_size=10, live=False)
    worker = CaptureWorker(source, BatchBuffer(max_frames=50, lossless=True))
    worker.start()
    assert wait_until(lambda: worker.buffer.depth_frames >= 50)
    start = time.monotonic()
    worker.stop()
    assert time.monotonic() - start < 1.0
    assert worker.done.is_set()
    assert not worker.is_alive()
    # What was queued is still readable, then the iteration ends.
    assert sum(len(b) for b in worker.batches()) == 50


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


def test_buffer_get_timeout_close_and_get_all() -> None:
    buffer = BatchBuffer(max_frames=100)
    assert buffer.get(timeout=0.05) is None
    assert buffer.put(FrameBatch.empty()) == 0
    for first in (0, 3, 6):
        assert buffer.put(make_batch(first, 3)) == 0
    assert buffer.depth_frames == 9
    assert buffer.depth_bytes == 72
    merged = buffer.get_all(max_frames=6)
    assert merged is not None and numbers(merged) == list(range(6))
    assert buffer.depth_frames == 3
    # A getter waiting on an empty buffer is woken by close().
    results: list[FrameBatch | None] = []
    buffer.get()
    getter = threading.Thread(target=lambda: results.append(buffer.get(timeout=5.0)))
    getter.start()
    time.sleep(0.05)
    buffer.close()
    getter.join(1.0)
    assert results == [None]
    assert buffer.closed and buffer.drained()
    assert buffer.put(make_batch(0, 1)) == 0  # discarded after close
    assert buffer.get_all() is None


def test_lossless_put_times_out_when_full() -> None:
    buffer = BatchBuffer(max_frames=4, lossless=True)
    buffer.put(make_batch(0, 4))
    with pytest.raises(queue.Full):
        buffer.put(make_batch(4, 1), timeout=0.05)
    # An oversized batch still goes into an empty buffer.
    buffer.get()
    assert buffer.put(make_batch(0, 10), timeout=0.05) == 0


def test_packet_rate() -> None:
    rate = PacketRate(window=5.0)
    assert rate.per_second(100.0) == 0.0
    for second in range(10):
        rate.add(100, now=100.0 + second, nbytes=6400)
    assert rate.per_second(109.0) == pytest.approx(100.0)
    assert rate.bytes_per_second(109.0) == pytest.approx(6400.0)
    assert rate.per_second(120.0) == 0.0
    assert rate.total_frames == 1000
    fresh = PacketRate()
    fresh.add(50, now=10.0)
    assert fresh.per_second(10.2) == pytest.approx(50.0)  # at least a second's span at the start
