"""FrameBatch: raw link-layer frames in one contiguous buffer, as handed from capture to decoding.

Frames travel in batches, never one by one: the decoder works on whole columns with numpy, and a
batch crosses the thread boundary as a single object.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Link-layer header types (https://www.tcpdump.org/linktypes.html) the decoder understands.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# Some BSD writers use DLT_RAW's platform value 12 (or 14 on OpenBSD) in files.
LINKTYPE_RAW_BSD = 12
LINKTYPE_RAW_OPENBSD = 14

SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_RAW_BSD,
        LINKTYPE_RAW_OPENBSD,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Frames stored back to back (or at arbitrary offsets) in ``data``.

    ``offsets[i]`` is where frame i starts in ``data``; ``caplen[i]`` how many of its bytes were
    captured; ``wirelen[i]`` how long it was on the wire; ``ts[i]`` its capture time in seconds since
    the epoch; ``linktype[i]`` its link-layer header type.
    """

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64
    caplen: np.ndarray  # int64
    wirelen: np.ndarray  # int64
    ts: np.ndarray  # float64
    linktype: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def captured_bytes(self) -> int:
        return int(self.caplen.sum())

    @property
    def wire_bytes(self) -> int:
        return int(self.wirelen.sum())

    def slice(self, start: int, stop: int) -> FrameBatch:
        """Frames start..stop, sharing this batch's buffer (no copy)."""
        return FrameBatch(
            self.data,
            self.offsets[start:stop],
            self.caplen[start:stop],
            self.wirelen[start:stop],
            self.ts[start:stop],
            self.linktype[start:stop],
        )

    def frame(self, index: int) -> bytes:
        start = int(self.offsets[index])
        return self.data[start : start + int(self.caplen[index])].tobytes()

    @classmethod
    def empty(cls) -> FrameBatch:
        zeros = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=np.uint8), zeros, zeros, zeros, np.zeros(0, np.float64), zeros)

    @classmethod
    def from_frames(
        cls,
        frames: Sequence[tuple[float, bytes, int]],
        linktype: int = LINKTYPE_ETHERNET,
    ) -> FrameBatch:
        """Build a batch from ``(timestamp, captured bytes, wire length)`` tuples."""
        if not frames:
            return cls.empty()
        payloads = [f[1] for f in frames]
        caplen = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=len(payloads))
        offsets = np.zeros(len(payloads), dtype=np.int64)
        np.cumsum(caplen[:-1], out=offsets[1:])
        data = np.frombuffer(b"".join(payloads), dtype=np.uint8)
        wirelen = np.maximum(np.fromiter((f[2] for f in frames), np.int64, len(frames)), caplen)
        ts = np.fromiter((f[0] for f in frames), dtype=np.float64, count=len(frames))
        return cls(data, offsets, caplen, wirelen, ts, np.full(len(frames), linktype, dtype=np.int64))

    @classmethod
    def concat(cls, batches: Iterable[FrameBatch]) -> FrameBatch:
        """One batch holding every frame of ``batches`` in order (copies the frame bytes)."""
        parts = [b for b in batches if len(b)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        chunks: list[np.ndarray] = []
        offsets: list[np.ndarray] = []
        base = 0
        for b in parts:
            # Gather each batch's frames contiguously so the new buffer holds nothing else.
            starts = b.offsets
            lengths = b.caplen
            total = int(lengths.sum())
            if total:
                index = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
                index += np.arange(total, dtype=np.int64)
                chunks.append(b.data[index])
            new_offsets = np.zeros(len(b), dtype=np.int64)
            if len(b) > 1:
                np.cumsum(lengths[:-1], out=new_offsets[1:])
            offsets.append(new_offsets + base)
            base += total
        data = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
        return cls(
            data,
            np.concatenate(offsets),
            np.concatenate([b.caplen for b in parts]),
            np.concatenate([b.wirelen for b in parts]),
            np.concatenate([b.ts for b in parts]),
            np.concatenate([b.linktype for b in parts]),
        )
