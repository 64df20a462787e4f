"""Replaying capture files, as fast as possible or at the capture's own pace.

``ReplaySource(paths)`` reads the files in order and hands out CaptureFile's large batches as fast
as the consumer takes them. With ``speed`` set it plays the capture back in (scaled) real time:

* capture time is mapped to wall time: the first frame is released at once, every later frame
  ``(ts - ts_first) / speed`` seconds after it; frames are never released before that time;
* frames are released in small batches (at most ``batch_frames``), and at most one batch every
  ``MIN_RELEASE_INTERVAL`` (50 ms) of wall time, unless replay is falling behind;
* a quiet stretch that would keep the replay waiting more than ``max_gap`` seconds of wall time
  (5 s by default) is cut short to ``max_gap``: a demo of a capture with an idle hour in it does not
  stall. Capture time jumping backwards by more than a second (files not in time order) restarts
  the clock at that frame instead of releasing everything at once;
* ``pause()``/``resume()``, ``step(n)`` and ``set_speed()`` work at any time, from any thread.

Files are opened lazily, one at a time. A file that cannot be opened or is damaged adds a warning to
``stats.warnings`` and the replay goes on with the next one.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from heimdal_tui.capture.errors import CaptureFileError
from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.capture.source import SourceStats

# Longest wait, in wall-clock seconds, between two frames of a paced replay: longer gaps are cut.
MAX_GAP_WAIT = 5.0
# Paced replay releases at most one batch per this many seconds (unless it is behind schedule).
MIN_RELEASE_INTERVAL = 0.05
# Capture time going back by more than this restarts the replay clock (files out of time order).
BACKWARD_JUMP = 1.0
# How long a paused replay sleeps between checks (control calls wake it immediately anyway).
_IDLE_WAIT = 0.5

# A replay reads its files in chunks of this size (analyze reads 16 MiB ones). A replay hands frames
# on a batch at a time, so bigger reads gain nothing (the same frames/s at 1 MiB as at 16 MiB), and
# each chunk stays in memory until the last frame taken from it is gone: a 16 MiB chunk holds a
# minute of a busy LAN paced at its own speed, a replay's largest single allocation.
REPLAY_CHUNK_BYTES = 1024 * 1024

# What a damaged file can make the record parser raise, besides its own CaptureFileError.
_CORRUPT_ERRORS = (struct.error, ValueError, IndexError)


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Where a replay stands. ``frames_total`` is None until every file has been counted."""

    frames_done: int
    frames_total: int | None
    bytes_done: int
    bytes_total: int
    capture_ts: float | None
    file_index: int
    file_count: int
    finished: bool

    @property
    def fraction(self) -> float | None:
        """Share of the replay done, 0..1 (by frames once counted, by file bytes until then)."""
        if self.finished:
            return 1.0
        if self.frames_total:
            return min(1.0, self.frames_done / self.frames_total)
        if self.bytes_total:
            return min(1.0, self.bytes_done / self.bytes_total)
        return None


class ReplaySource:
    """Frames from capture files, in order; see the module docstring for pacing."""

    live: bool = False

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        speed: float | None = None,
        batch_frames: int = 4096,
        *,
        max_gap: float = MAX_GAP_WAIT,
        chunk_bytes: int = REPLAY_CHUNK_BYTES,
    ) -> None:
        _check_speed(speed)
        if batch_frames < 1:
            raise ValueError("batch_frames must be at least 1")
        if max_gap <= 0:
            raise ValueError("max_gap must be positive")
        self.paths = [os.fspath(p) for p in paths]
        self.batch_frames = batch_frames
        self.max_gap = max_gap
        self.chunk_bytes = chunk_bytes
        self.stats = SourceStats()
        self._sizes = [_file_size(p) for p in self.paths]
        self._cond = threading.Condition()
        self._speed = speed
        self._stopped = False
        self._paused = False
        self._step_credit = 0
        # Replay clock: (monotonic wall time, capture time) of a reference point; None = restart it
        # at the next frame.
        self._anchor: tuple[float, float] | None = None
        self._last_release = -math.inf
        self._catching_up = False
        self._started = False
        self._finished = False
        self._file_index = 0
        self._frames_done = 0
        self._bytes_done = 0
        self._bytes_before_file = 0
        self._frames_total: int | None = None
        self._counter: threading.Thread | None = None

    # -- control (any thread) ---------------------------------------------------------------
    @property
    def speed(self) -> float | None:
        return self._speed

    def set_speed(self, speed: float | None) -> None:
        """Change the pace (None = as fast as possible); takes effect from the next frame."""
        _check_speed(speed)
        with self._cond:
            self._speed = speed
            self._anchor = None
            self._catching_up = False
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        """Carry on from where the replay stands; the next frame keeps its gap to the last one."""
        with self._cond:
            self._paused = False
            self._step_credit = 0
            self._anchor = None
            self._cond.notify_all()

    def step(self, n_frames: int = 1) -> None:
        """Release exactly the next ``n_frames`` frames, then stay paused (pauses a running replay)."""
        if n_frames < 1:
            raise ValueError("step needs at least one frame")
        with self._cond:
            self._paused = True
            self._step_credit += n_frames
            self._cond.notify_all()

    def stop(self) -> None:
        """End ``batches()`` promptly, even while paused or waiting for a frame's time."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def progress(self) -> ReplayProgress:
        with self._cond:
            return ReplayProgress(
                frames_done=self._frames_done,
                frames_total=self._frames_total,
                bytes_done=self._bytes_done,
                bytes_total=sum(self._sizes),
                capture_ts=self.stats.last_ts,
                file_index=self._file_index,
                file_count=len(self.paths),
                finished=self._finished,
            )

    def describe(self) -> str:
        if len(self.paths) == 1:
            what = os.path.basename(self.paths[0])
        else:
            names = ", ".join(os.path.basename(p) for p in self.paths[:2])
            more = ", …" if len(self.paths) > 2 else ""
            what = f"{len(self.paths)} files ({names}{more})"
        pace = "as fast as possible" if self._speed is None else f"at {self._speed:g}× speed"
        return f"replay of {what} {pace}"

    # -- producing (one consumer thread) ----------------------------------------------------
    def batches(self) -> Iterator[FrameBatch]:
        with self._cond:
            if self._started:
                raise RuntimeError("a ReplaySource can be iterated only once")
            self._started = True
        self.stats.started_at = time.monotonic()
        self._start_counter()
        try:
            for index, path in enumerate(self.paths):
                with self._cond:
                    if self._stopped:
                        return
                    self._file_index = index
                    self._bytes_before_file = sum(self._sizes[:index])
                    self._bytes_done = self._bytes_before_file
                completed = yield from self._replay_file(path, self._sizes[index])
                if not completed:
                    return
                with self._cond:
                    self.stats.files_done += 1
                    self._bytes_done = self._bytes_before_file + self._sizes[index]
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _replay_file(self, path: str, size: int) -> Generator[FrameBatch, None, bool]:
        """Release one file's frames; False when stopped before its end."""
        try:
            cf = CaptureFile(path, chunk_bytes=self.chunk_bytes)
        except CaptureFileError as exc:
            self._warn(f"{exc}; skipped this file")
            return True
        try:
            for chunk in cf.batches():
                # CaptureFile advances bytes_read after its consumer takes the chunk, so here it still
                # is the file offset of the chunk buffer's first byte.
                base = cf.bytes_read
                if not (yield from self._release(chunk, base, size)):
                    return False
        except CaptureFileError as exc:
            self._warn(f"{exc}; skipped the rest of this file")
        except _CORRUPT_ERRORS as exc:
            self._warn(f"{path}: corrupt capture data ({exc}); skipped the rest of this file")
        finally:
            for message in cf.warnings:
                self._warn(message)
        return True

    def _release(self, batch: FrameBatch, base: int, size: int) -> Generator[FrameBatch, None, bool]:
        n = len(batch)
        i = 0
        while i < n:
            with self._cond:
                if self._stopped:
                    return False
                k = self._due(batch, i)
                if not k:
                    continue
                part = batch if k == n else batch.slice(i, i + k)
                self.stats.count(part)
                self._frames_done += k
                last = i + k - 1
                end = base + int(batch.offsets[last]) + int(batch.caplen[last])
                self._bytes_done = self._bytes_before_file + min(end, size)
            yield part
            i += k
        return True

    def _due(self, batch: FrameBatch, i: int) -> int:
        """How many frames from ``i`` to release now; 0 after waiting (then ask again). Holds the lock."""
        n = len(batch)
        if self._paused:
            if self._step_credit <= 0:
                self._cond.wait(_IDLE_WAIT)
                return 0
            k = min(self._step_credit, n - i)
            self._step_credit -= k
            self._anchor = None
            return k
        speed = self._speed
        if speed is None:
            return n - i
        now = time.monotonic()
        ts = batch.ts
        t_next = float(ts[i])
        last_ts = self.stats.last_ts
        jumped_back = last_ts is not None and t_next < last_ts - BACKWARD_JUMP
        if self._anchor is None or jumped_back:
            # Restart the clock: the next frame keeps its gap to the previous one (none after a jump).
            ref = t_next if last_ts is None or jumped_back else last_ts
            self._anchor = (now, ref)
        wall0, ts0 = self._anchor
        due = wall0 + (t_next - ts0) / speed
        if due - now > self.max_gap:
            wall0 -= due - now - self.max_gap
            self._anchor = (wall0, ts0)
            due = now + self.max_gap
        release_at = due if self._catching_up else max(due, self._last_release + MIN_RELEASE_INTERVAL)
        if release_at > now:
            self._cond.wait(release_at - now)
            return 0
        cutoff = ts0 + (now - wall0) * speed
        window = ts[i : min(n, i + self.batch_frames)]
        not_yet = window > cutoff
        k = int(np.argmax(not_yet)) if bool(not_yet.any()) else len(window)
        k = max(k, 1)
        self._last_release = now
        # A full batch may leave more frames overdue: release them without the 50 ms spacing.
        self._catching_up = k == self.batch_frames
        return k

    def _warn(self, message: str) -> None:
        with self._cond:
            self.stats.warnings.append(message)

    # -- counting the frames for progress ---------------------------------------------------
    def _start_counter(self) -> None:
        self._counter = threading.Thread(target=self._count_all, name="heimdal-replay-count", daemon=True)
        self._counter.start()

    def _count_all(self) -> None:
        total = 0
        for path in self.paths:
            try:
                cf = CaptureFile(path, chunk_bytes=self.chunk_bytes)
                for chunk in cf.batches():
                    total += len(chunk)
                    if self._stopped:
                        return
            except (CaptureFileError, OSError, *_CORRUPT_ERRORS):
                pass  # the replay itself reports what is wrong with the file
            if self._stopped:
                return
        with self._cond:
            self._frames_total = total


def _check_speed(speed: float | None) -> None:
    if speed is not None and not (speed > 0 and math.isfinite(speed)):
        raise ValueError(f"replay speed must be a positive number or None, not {speed!r}")


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
