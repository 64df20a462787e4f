"""A one-line progress bar on stderr, for when stderr is a terminal."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressBar:
    WIDTH = 30
    INTERVAL = 0.1

    def __init__(self, stream: TextIO, total_bytes: int) -> None:
        self.stream = stream
        self.total = max(total_bytes, 1)
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done_bytes: int, frames: int) -> None:
        now = time.monotonic()
        if now - self._last < self.INTERVAL:
            return
        self._last = now
        fraction = min(done_bytes / self.total, 1.0)
        filled = int(fraction * self.WIDTH)
        elapsed = now - self.started
        rate = frames / elapsed if elapsed > 0 else 0.0
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {fraction:6.1%} {frames:,} packets {rate:,.0f}/s ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * (self.WIDTH + 50) + "\r")
        self.stream.flush()
