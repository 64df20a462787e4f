"""The capture thread: runs a FrameSource and hands its batches to the consumer through a bounded buffer.

Live capture must never block (the kernel drops what we do not read in time), so its buffer drops
whole batches when the consumer is behind and counts them. Replay must never lose anything, so its
buffer makes the capture thread wait instead.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Generator, Iterator

from heimdal_tui.capture.errors import CaptureError
from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.source import FrameSource

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAMES = 200_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# How often a blocked producer re-checks whether the worker is being stopped.
_PUT_POLL = 0.1


class BatchBuffer:
    """A bounded, thread-safe FIFO of FrameBatch objects.

    Bounds count frames and captured bytes (``caplen``). A batch is always accepted into an empty
    buffer, even one larger than the bounds, so an oversized batch cannot wedge the pipeline.
    """

    def __init__(
        self,
        max_frames: int = DEFAULT_MAX_FRAMES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        lossless: bool = False,
    ) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError("buffer bounds must be positive")
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.lossless = lossless
        self._items: collections.deque[FrameBatch] = collections.deque()
        self._cond = threading.Condition()
        self._frames = 0
        self._bytes = 0
        self._dropped = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped_frames(self) -> int:
        return self._dropped

    @property
    def depth_frames(self) -> int:
        return self._frames

    @property
    def depth_bytes(self) -> int:
        return self._bytes

    def _fits(self, frames: int, nbytes: int) -> bool:
        if not self._items:
            return True
        return self._frames + frames <= self.max_frames and self._bytes + nbytes <= self.max_bytes

    def put(self, batch: FrameBatch, timeout: float | None = None) -> int:
        """Queue ``batch``; returns how many frames were dropped (0 or ``len(batch)``).

        Lossless: waits for room (up to ``timeout`` seconds, then raises ``queue.Full``). Lossy: never
        waits; a batch that does not fit is dropped whole and counted in ``dropped_frames``. After
        ``close()`` batches are discarded silently (returns 0).
        """
        n = len(batch)
        if not n:
            return 0
        nbytes = batch.captured_bytes
        with self._cond:
            if self.lossless:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._closed and not self._fits(n, nbytes):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise queue.Full
                    self._cond.wait(remaining)
            elif not self._closed and not self._fits(n, nbytes):
                self._dropped += n
                return n
            if self._closed:
                return 0
            self._items.append(batch)
            self._frames += n
            self._bytes += nbytes
            self._cond.notify_all()
            return 0

    def _pop(self) -> FrameBatch:
        batch = self._items.popleft()
        self._frames -= len(batch)
        self._bytes -= batch.captured_bytes
        return batch

    def _wait_for_item(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._items and not self._closed:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._cond.wait(remaining)
        return bool(self._items)

    def get(self, timeout: float | None = None) -> FrameBatch | None:
        """The oldest batch; None after ``timeout`` seconds (None: no limit) or once closed and empty."""
        with self._cond:
            if not self._wait_for_item(timeout):
                return None
            batch = self._pop()
            self._cond.notify_all()
            return batch

    def get_all(self, max_frames: int = DEFAULT_MAX_FRAMES, timeout: float | None = 0.0) -> FrameBatch | None:
        """Everything waiting, up to ``max_frames`` (always at least one batch), as one batch.

        Waits up to ``timeout`` seconds for the first batch (default: do not wait).
        """
        with self._cond:
            if not self._wait_for_item(timeout):
                return None
            taken = [self._pop()]
            count = len(taken[0])
            while self._items and count + len(self._items[0]) <= max_frames:
                count += len(self._items[0])
                taken.append(self._pop())
            self._cond.notify_all()
        return FrameBatch.concat(taken)

    def drained(self) -> bool:
        """Closed and nothing left to read."""
        with self._cond:
            return self._closed and not self._items

    def close(self) -> None:
        """No more batches will come: wakes every waiter; readers still get what is queued."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class CaptureWorker:
    """Runs ``source.batches()`` in a daemon thread named "heimdal-capture", into ``buffer``.

    Without an explicit buffer a replay (``source.live`` false) gets a lossless one and live capture
    a lossy one. A CaptureError raised by the source ends the thread and is kept in ``error``; any
    other exception is logged and kept there too, wrapped in a CaptureError. Either way the buffer
    is closed, so the consumer's ``batches()`` loop ends; ``done`` is set when the thread has ended.
    """

    def __init__(self, source: FrameSource, buffer: BatchBuffer | None = None) -> None:
        self.source = source
        self.buffer = buffer if buffer is not None else BatchBuffer(lossless=not source.live)
        self.error: CaptureError | None = None
        self.done = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heimdal-capture", daemon=True)

    @property
    def name(self) -> str:
        return self._thread.name

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the source and wait up to ``timeout`` seconds for the thread to end.

        Batches already queued stay readable. If the thread does not end in time the buffer is
        closed anyway, so a consumer is never left waiting.
        """
        self._stopping.set()
        self.source.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.buffer.close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def batches(self, poll: float = 0.25) -> Iterator[FrameBatch]:
        """Batches as they arrive, until the source has ended and the buffer is drained.

        Check ``error`` afterwards to tell a failure from the source simply running out.
        """
        while True:
            batch = self.buffer.get(timeout=poll)
            if batch is not None:
                yield batch
            elif self.buffer.drained():
                return

    def _run(self) -> None:
        stats = self.source.stats
        buffer = self.buffer
        batches = self.source.batches()
        try:
            for batch in batches:
                dropped = self._put(batch)
                if dropped:
                    stats.buffer_drops += dropped
                if self._stopping.is_set() and buffer.closed:
                    break
        except CaptureError as exc:
            self.error = exc
        except Exception as exc:
            log.exception("capture thread failed")
            error = CaptureError(f"capture stopped by an unexpected error: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self.error = error
        finally:
            if isinstance(batches, Generator):
                try:
                    batches.close()  # runs the source's cleanup (closes a live socket) now
                except Exception:
                    log.exception("closing the frame source failed")
            buffer.close()
            self.done.set()

    def _put(self, batch: FrameBatch) -> int:
        if not self.buffer.lossless:
            return self.buffer.put(batch)
        while True:
            try:
                return self.buffer.put(batch, timeout=_PUT_POLL)
            except queue.Full:
                if self._stopping.is_set():
                    return 0  # stopping with a stalled consumer: what is left is not wanted


class PacketRate:
    """Frames (and bytes) per second over the last ``window`` seconds, for statistics displays."""

    def __init__(self, window: float = 5.0) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self._samples: collections.deque[tuple[float, int, int]] = collections.deque()
        self._frames = 0
        self._bytes = 0
        self._first: float | None = None
        self.total_frames = 0
        self.total_bytes = 0

    def add(self, frames: int, now: float | None = None, nbytes: int = 0) -> None:
        now = time.monotonic() if now is None else now
        if self._first is None:
            self._first = now
        self._samples.append((now, frames, nbytes))
        self._frames += frames
        self._bytes += nbytes
        self.total_frames += frames
        self.total_bytes += nbytes
        self._expire(now)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        samples = self._samples
        while samples and samples[0][0] <= horizon:
            _, frames, nbytes = samples.popleft()
            self._frames -= frames
            self._bytes -= nbytes

    def _span(self, now: float) -> float:
        # Until a whole window has passed, divide by the time observed so far (at least a second,
        # so the very first samples do not show absurd rates).
        if self._first is None:
            return self.window
        return min(self.window, max(1.0, now - self._first))

    def per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._expire(now)
        return self._frames / self._span(now)

    def bytes_per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._expire(now)
        return self._bytes / self._span(now)
