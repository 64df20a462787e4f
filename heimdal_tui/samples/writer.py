"""Collecting generated frames and writing them as a classic pcap file.

Frames are produced out of order (each simulated conversation emits its own packets with their own
timestamps), collected in a :class:`FrameLog`, then sorted by time and written in one pass with
``struct``: little-endian pcap, microsecond timestamps, LINKTYPE_ETHERNET.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

PCAP_MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


@dataclass
class FrameLog:
    """Frames tagged with a capture time in integer microseconds since the epoch.

    ``tag`` names what produced a frame (an incident id, or "" for benign traffic), so a scenario can
    report each incident's packets and time span from what was actually emitted.
    """

    records: list[tuple[int, int, bytes, int, str]] = field(default_factory=list)

    def add(self, t_us: int, frame: bytes, wire_len: int, tag: str = "") -> None:
        if wire_len < len(frame):
            raise ValueError("wire length shorter than the captured bytes")
        self.records.append((int(t_us), len(self.records), frame, wire_len, tag))

    def extend(self, other: FrameLog) -> None:
        for t_us, _, frame, wire_len, tag in other.records:
            self.add(t_us, frame, wire_len, tag)

    def sorted(self) -> list[tuple[int, int, bytes, int, str]]:
        # The insertion counter breaks ties, so equal timestamps keep their emission order.
        return sorted(self.records, key=lambda r: (r[0], r[1]))

    def __len__(self) -> int:
        return len(self.records)


def pcap_bytes(records: Iterable[tuple[int, bytes, int]], snaplen: int = SNAPLEN) -> bytes:
    """A pcap file image from ``(t_us, captured, wire_len)`` records, in the order given."""
    out = bytearray(_FILE_HEADER.pack(PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
    pack = _RECORD_HEADER.pack
    for t_us, frame, wire_len in records:
        sec, usec = divmod(t_us, 1_000_000)
        out += pack(sec, usec, len(frame), wire_len)
        out += frame
    return bytes(out)


def write_pcap(path: str | os.PathLike[str], log: FrameLog, snaplen: int = SNAPLEN) -> str:
    """Write ``log`` sorted by time to ``path``; returns the file's sha256."""
    image = pcap_bytes(((t, frame, wire) for t, _, frame, wire, _ in log.sorted()), snaplen)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as f:
        f.write(image)
    os.replace(tmp, path)
    return hashlib.sha256(image).hexdigest()
