"""Reading pcap and pcapng files in large chunks, as FrameBatch objects.

Only record headers are walked in Python; the frames stay in the chunk buffer and are decoded in
bulk later. A file that ends mid-record or holds a corrupt record yields every frame before the
damage, and the damage is reported in ``warnings``.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from heimdal_tui.capture.errors import CaptureFileError
from heimdal_tui.capture.frames import SUPPORTED_LINKTYPES, FrameBatch

CHUNK_BYTES = 16 * 1024 * 1024
# A record claiming more than this is corrupt: no link layer carries frames this large.
MAX_FRAME = 262_144

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D

_BLOCK_IDB = 1
_BLOCK_OPB = 2
_BLOCK_SPB = 3
_BLOCK_EPB = 6


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    ticks_per_second: float = 1_000_000.0
    offset_seconds: int = 0


@dataclass
class CaptureFile:
    """One capture file being read; iterate ``batches()`` for its frames."""

    path: str
    chunk_bytes: int = CHUNK_BYTES
    warnings: list[str] = field(default_factory=list)
    frames_read: int = 0
    bytes_read: int = 0
    size: int = 0
    format: str = ""

    def __post_init__(self) -> None:
        try:
            self.size = os.path.getsize(self.path)
        except OSError as exc:
            raise CaptureFileError(self.path, exc.strerror or str(exc)) from None
        if os.path.isdir(self.path):
            raise CaptureFileError(self.path, "is a directory, not a capture file")
        with open(self.path, "rb") as f:
            head = f.read(24)
        self.format = sniff_format(self.path, head)

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.path}: {message}")

    def batches(self) -> Iterator[FrameBatch]:
        reader = self._pcap_batches if self.format == "pcap" else self._pcapng_batches
        try:
            yield from reader()
        except OSError as exc:
            self.warn(f"read failed after {self.frames_read} frames: {exc.strerror or exc}")

    # -- pcap -------------------------------------------------------------------------------
    def _pcap_batches(self) -> Iterator[FrameBatch]:
        with open(self.path, "rb") as f:
            header = f.read(24)
            magic_le = struct.unpack("<I", header[:4])[0]
            if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                order = "<"
                magic = magic_le
            else:
                order = ">"
                magic = struct.unpack(">I", header[:4])[0]
            if len(header) < 24:
                self.warn("file ends inside the pcap file header")
                return
            _, _, _, _, snaplen, network = struct.unpack(order + "HHiIII", header[4:])
            linktype = network & 0x0FFFFFFF
            if linktype not in SUPPORTED_LINKTYPES:
                raise CaptureFileError(self.path, f"unsupported link-layer type {linktype}")
            divisor = 1e9 if magic == PCAP_MAGIC_NS else 1e6
            limit = max(MAX_FRAME, snaplen)
            self.bytes_read = 24
            incl_struct = struct.Struct(order + "I")
            chunks = _Chunks(f, self.chunk_bytes)
            view_type = order + "u4"
            while True:
                buf, eof = chunks.next()
                if not buf:
                    return
                n = len(buf)
                # Only the record lengths are read in Python (they chain the records), in the
                # tightest loop that can do it; they are checked, and every other header field is
                # gathered, for the whole chunk at once afterwards.
                heads: list[int] = []
                append = heads.append
                unpack = incl_struct.unpack_from
                pos, stop = 0, n - 16
                while pos <= stop:
                    append(pos)
                    pos += 16 + unpack(buf, pos + 8)[0]
                corrupt = ""
                starts = np.array(heads, dtype=np.int64)
                if starts.shape[0]:
                    view = np.ndarray(shape=(n - 3,), dtype=view_type, buffer=buf, strides=(1,))
                    incl = view[starts + 8].astype(np.int64)
                    too_long = incl > limit
                    if too_long.any():
                        # Records after a corrupt one were walked through garbage: keep those before.
                        k = int(np.argmax(too_long))
                        corrupt = f"record {self.frames_read + k + 1} claims {int(incl[k])} bytes"
                        pos = int(starts[k])
                        starts = starts[:k]
                    elif pos > n:
                        pos = int(starts[-1])  # the last record is cut by the end of the chunk
                        starts = starts[:-1]
                if starts.shape[0]:
                    yield self._batch(buf, starts, order, divisor, linktype)
                self.bytes_read += pos
                if corrupt:
                    self.warn(f"corrupt record header ({corrupt}); stopped reading this file there")
                    return
                if eof:
                    if pos < n:
                        self.warn(
                            f"file is truncated: the last {n - pos} bytes are an incomplete record "
                            f"(read {self.frames_read} complete frames)"
                        )
                    return
                chunks.keep(buf, pos)

    def _batch(
        self, buf: memoryview, pos: np.ndarray, order: str, divisor: float, linktype: int
    ) -> FrameBatch:
        count = int(pos.shape[0])
        self.frames_read += count
        data = np.frombuffer(buf, dtype=np.uint8)
        # Records start at any byte offset: read their header words through a byte-strided view.
        view = np.ndarray(shape=(len(buf) - 3,), dtype=f"{order}u4", buffer=buf, strides=(1,))
        sec, frac, incl, orig = (view[pos + 4 * k].astype(np.int64) for k in range(4))
        ts = sec.astype(np.float64) + frac.astype(np.float64) / divisor
        return FrameBatch(
            data,
            pos + 16,
            incl,
            np.maximum(orig, incl),
            ts,
            np.full(count, linktype, dtype=np.int64),
        )

    # -- pcapng -----------------------------------------------------------------------------
    def _pcapng_batches(self) -> Iterator[FrameBatch]:
        interfaces: list[_Interface] = []
        order = "<"
        last_ts = 0.0
        with open(self.path, "rb") as f:
            chunks = _Chunks(f, self.chunk_bytes)
            while True:
                buf, eof = chunks.next()
                if not buf:
                    return
                pos, n = 0, len(buf)
                starts: list[int] = []
                caps: list[int] = []
                origs: list[int] = []
                times: list[float] = []
                links: list[int] = []
                corrupt = ""
                while pos + 12 <= n:
                    btype = struct.unpack_from(order + "I", buf, pos)[0]
                    if btype == PCAPNG_SHB:
                        if pos + 12 > n:
                            break
                        bom = buf[pos + 8 : pos + 12]
                        if bom == b"\x4d\x3c\x2b\x1a":
                            order = "<"
                        elif bom == b"\x1a\x2b\x3c\x4d":
                            order = ">"
                        else:
                            corrupt = "section header with an unknown byte-order magic"
                            break
                        interfaces = []
                    blen = struct.unpack_from(order + "I", buf, pos + 4)[0]
                    if blen < 12 or blen % 4 or blen > MAX_FRAME + 4096:
                        corrupt = f"block of type {btype:#x} claims length {blen}"
                        break
                    if pos + blen > n:
                        break
                    body = pos + 8
                    if btype == _BLOCK_EPB:
                        ifid, tsh, tsl, cap, orig = struct.unpack_from(order + "IIIII", buf, body)
                        if ifid >= len(interfaces) or 20 + cap > blen - 12:
                            corrupt = f"packet block names interface {ifid} or overruns its block"
                            break
                        iface = interfaces[ifid]
                        last_ts = ((tsh << 32) | tsl) / iface.ticks_per_second + iface.offset_seconds
                        starts.append(body + 20)
                        caps.append(cap)
                        origs.append(orig)
                        times.append(last_ts)
                        links.append(iface.linktype)
                    elif btype == _BLOCK_SPB:
                        if not interfaces:
                            corrupt = "simple packet block before any interface description"
                            break
                        orig = struct.unpack_from(order + "I", buf, body)[0]
                        iface = interfaces[0]
                        cap = min(orig, blen - 16, iface.snaplen or orig)
                        starts.append(body + 4)
                        caps.append(cap)
                        origs.append(orig)
                        times.append(last_ts)
                        links.append(iface.linktype)
                    elif btype == _BLOCK_OPB:
                        ifid, _drops, tsh, tsl, cap, orig = struct.unpack_from(order + "HHIIII", buf, body)
                        if ifid >= len(interfaces) or 20 + cap > blen - 12:
                            corrupt = "obsolete packet block overruns its block"
                            break
                        iface = interfaces[ifid]
                        last_ts = ((tsh << 32) | tsl) / iface.ticks_per_second + iface.offset_seconds
                        starts.append(body + 20)
                        caps.append(cap)
                        origs.append(orig)
                        times.append(last_ts)
                        links.append(iface.linktype)
                    elif btype == _BLOCK_IDB:
                        iface = self._parse_idb(buf, body, pos + blen - 4, order)
                        if iface.linktype not in SUPPORTED_LINKTYPES:
                            self.warn(
                                f"interface {len(interfaces)} has unsupported link type {iface.linktype}"
                            )
                        interfaces.append(iface)
                    pos += blen
                if starts:
                    count = len(starts)
                    self.frames_read += count
                    caplen = np.array(caps, dtype=np.int64)
                    yield FrameBatch(
                        np.frombuffer(buf, dtype=np.uint8),
                        np.array(starts, dtype=np.int64),
                        caplen,
                        np.maximum(np.array(origs, dtype=np.int64), caplen),
                        np.array(times, dtype=np.float64),
                        np.array(links, dtype=np.int64),
                    )
                self.bytes_read += pos
                if corrupt:
                    self.warn(f"corrupt pcapng data ({corrupt}); stopped reading this file there")
                    return
                if eof:
                    if pos < n:
                        self.warn(
                            f"file is truncated: the last {n - pos} bytes are an incomplete block "
                            f"(read {self.frames_read} complete frames)"
                        )
                    return
                chunks.keep(buf, pos)

    @staticmethod
    def _parse_idb(buf: memoryview, body: int, end: int, order: str) -> _Interface:
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, body)
        iface = _Interface(linktype=linktype, snaplen=snaplen)
        opt = body + 8
        while opt + 4 <= end:
            code, length = struct.unpack_from(order + "HH", buf, opt)
            if code == 0:
                break
            value = opt + 4
            if code == 9 and length >= 1:  # if_tsresol
                res = buf[value]
                iface.ticks_per_second = float(2 ** (res & 0x7F)) if res & 0x80 else float(10**res)
            elif code == 14 and length >= 8:  # if_tsoffset
                iface.offset_seconds = struct.unpack_from(order + "q", buf, value)[0]
            opt = value + ((length + 3) & ~3)
        return iface


class _Chunks:
    """Large reads of a file, each continuing the record the previous chunk cut off.

    The cut record is read again with the next chunk (a seek back by less than one record) rather
    than copied in front of it, which would copy the whole chunk; the chunk after it is exactly the
    cut bytes plus ``size`` new ones, as if joined. A file that cannot seek joins.

    Each chunk is read into an anonymous memory map of its own, unmapped as soon as the last frame
    batch referring to it is gone. A chunk allocated on the heap instead stays in the process's
    memory as a hole once freed (later small allocations pin the heap above it), and peak memory
    grows with every chunk that lands at a different place.
    """

    def __init__(self, f: io.BufferedReader, size: int) -> None:
        self.f = f
        self.size = size
        self.seekable = f.seekable()
        self.carry = b""
        self.again = 0  # bytes before the file position that the next chunk starts with

    def next(self) -> tuple[memoryview, bool]:
        """The next chunk, and whether the file ends with it."""
        again, self.again = self.again, 0
        carry, self.carry = self.carry, b""
        area = memoryview(mmap.mmap(-1, len(carry) + self.size + again))
        area[: len(carry)] = carry
        got = self.f.readinto(area[len(carry) :]) or 0
        return area[: len(carry) + got], got - again < self.size

    def keep(self, buf: memoryview, pos: int) -> None:
        """``buf[pos:]`` (the start of a record) is still to be read."""
        rest = len(buf) - pos
        if not rest:
            return
        if self.seekable:
            self.f.seek(-rest, os.SEEK_CUR)
            self.again = rest
        else:
            self.carry = bytes(buf[pos:])


def sniff_format(path: str, head: bytes) -> str:
    """'pcap' or 'pcapng' from the first bytes, or CaptureFileError naming what the file is."""
    if len(head) < 4:
        raise CaptureFileError(path, "file is empty or too short to be a capture")
    le = struct.unpack("<I", head[:4])[0]
    be = struct.unpack(">I", head[:4])[0]
    if le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        return "pcap"
    if le == PCAPNG_SHB:
        return "pcapng"
    if head[:2] == b"\x1f\x8b":
        raise CaptureFileError(path, "is gzip-compressed; decompress it first (gunzip)")
    raise CaptureFileError(path, "not a pcap or pcapng capture (unknown magic number)")


def count_frames(path: str) -> int:
    """Frames in a capture file (reads the file once; used for replay progress)."""
    cf = CaptureFile(path)
    return sum(len(b) for b in cf.batches())
