"""What every frame source (capture file replay, live interface) looks like to the rest of the engine."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from heimdal_tui.capture.frames import FrameBatch


@dataclass(slots=True)
class SourceStats:
    """Counters a source keeps while it runs; read them from any thread (use ``copy()`` for a snapshot).

    ``frames``/``bytes``/``wire_bytes`` count what the source handed out (captured bytes and lengths
    on the wire). ``kernel_drops`` is what the kernel dropped before we could read it (live capture
    only; None for replay or when the kernel does not report it). ``buffer_drops`` counts frames the
    capture worker threw away because the consumer was behind. ``started_at`` is a
    ``time.monotonic()`` value, reset when the source starts producing; ``last_ts`` is the capture
    time (seconds since the epoch) of the last frame handed out.
    """

    frames: int = 0
    bytes: int = 0
    wire_bytes: int = 0
    kernel_drops: int | None = None
    buffer_drops: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last_ts: float | None = None
    files_done: int = 0
    warnings: list[str] = field(default_factory=list)

    def count(self, batch: FrameBatch) -> None:
        """Account for ``batch`` being handed out."""
        n = len(batch)
        if not n:
            return
        self.frames += n
        self.bytes += batch.captured_bytes
        self.wire_bytes += batch.wire_bytes
        self.last_ts = float(batch.ts[-1])

    def copy(self) -> SourceStats:
        """A snapshot that the source will not modify afterwards."""
        return dataclasses.replace(self, warnings=list(self.warnings))


class FrameSource(Protocol):
    """A producer of FrameBatch objects: a capture file replay or a live interface.

    ``batches()`` blocks and yields batches until the source is exhausted or ``stop()`` is called
    (from any thread); ``stop()`` makes it end promptly. ``live`` says whether frames are lost when
    nobody reads them fast enough (live capture) or can wait (replay).
    """

    stats: SourceStats
    live: bool

    def batches(self) -> Iterator[FrameBatch]: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...
