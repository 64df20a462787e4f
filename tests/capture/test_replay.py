"""ReplaySource: file order, pacing, pause/step, progress and damaged files."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, wrpcap

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.replay import REPLAY_CHUNK_BYTES, ReplaySource

T0 = 1_700_000_000.0


def _packets(first: int, count: int, start: float = T0, step: float = 0.01) -> list[Ether]:
    packets = []
    for k in range(count):
        seq = first + k
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
        p = p / UDP(sport=40000, dport=5000) / f"seq{seq:06d}".encode()
        p.time = start + k * step
        packets.append(p)
    return packets


def write_pcap(path: Path, first: int, count: int, start: float = T0, step: float = 0.01) -> str:
    wrpcap(str(path), _packets(first, count, start, step))
    return str(path)


def write_pcapng(path: Path, first: int, count: int, start: float = T0, step: float = 0.01) -> str:
    with PcapNgWriter(str(path)) as writer:
        for p in _packets(first, count, start, step):
            writer.write(p)
    return str(path)


def seqs(batch: FrameBatch) -> list[int]:
    return [int(batch.frame(i)[-6:]) for i in range(len(batch))]


def all_seqs(batches: list[FrameBatch]) -> list[int]:
    return [s for b in batches for s in seqs(b)]


class Collector:
    """Iterates a source's batches() in a thread, recording each batch with its arrival time."""

    def __init__(self, source: ReplaySource) -> None:
        self.source = source
        self.batches: list[tuple[float, FrameBatch]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for batch in self.source.batches():
            with self.lock:
                self.batches.append((time.monotonic(), batch))

    @property
    def frames(self) -> int:
        with self.lock:
            return sum(len(b) for _, b in self.batches)

    def seqs(self) -> list[int]:
        with self.lock:
            return all_seqs([b for _, b in self.batches])


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_files_replayed_in_order_as_fast_as_possible(tmp_path: Path) -> None:
    paths = [
        write_pcap(tmp_path / "a.pcap", 0, 10),
        write_pcapng(tmp_path / "b.pcapng", 10, 25),
        write_pcap(tmp_path / "c.pcap", 35, 5),
    ]
    source = ReplaySource(paths)
    start = time.monotonic()
    batches = list(source.batches())
    assert time.monotonic() - start < 1.0
    assert all_seqs(batches) == list(range(40))
    assert len(batches) == 3  # one big batch per small file: nothing is split when not paced
    stats = source.stats
    assert stats.frames == 40
    assert stats.files_done == 3
    assert stats.kernel_drops is None
    assert stats.warnings == []
    assert stats.bytes == sum(b.captured_bytes for b in batches)
    assert stats.last_ts == pytest.approx(T0 + 4 * 0.01)
    assert source.live is False
    assert "3 files" in source.describe()


def test_paced_replay_never_releases_early(tmp_path: Path) -> None:
    # 41 frames spanning 2 s of capture time, played at 10x: about 0.2 s of wall time.
    path = write_pcap(tmp_path / "paced.pcap", 0, 41, step=0.05)
    source = ReplaySource([path], speed=10)
    start = time.monotonic()
    received: list[tuple[float, FrameBatch]] = []
    for batch in source.batches():
        received.append((time.monotonic(), batch))
    elapsed = time.monotonic() - start
    assert 0.15 <= elapsed <= 1.5
    assert all_seqs([b for _, b in received]) == list(range(41))
    # Released in several small batches, at most one per ~50 ms.
    assert 3 <= len(received) <= 8
    first_ts = T0
    for arrived, batch in received:
        scheduled = start + (float(batch.ts.max()) - first_ts) / 10
        assert arrived >= scheduled - 0.001


def test_paced_batches_are_split(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "dense.pcap", 0, 50, step=0.001)
    source = ReplaySource([path], speed=1.0, batch_frames=4)
    batches = list(source.batches())
    assert all(len(b) <= 4 for b in batches)
    assert all_seqs(batches) == list(range(50))


def test_large_gaps_are_cut_short(tmp_path: Path) -> None:
    packets = _packets(0, 2) + _packets(2, 2, start=T0 + 3600)
    path = str(tmp_path / "gap.pcap")
    wrpcap(path, packets)
    source = ReplaySource([path], speed=1.0, max_gap=0.2)
    start = time.monotonic()
    batches = list(source.batches())
    elapsed = time.monotonic() - start
    assert all_seqs(batches) == [0, 1, 2, 3]
    assert 0.19 <= elapsed < 1.0


def test_set_speed_while_running(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "slow.pcap", 0, 41, step=0.1)  # 4 s of capture
    source = ReplaySource([path], speed=1.0)
    start = time.monotonic()
    seen = 0
    for batch in source.batches():
        seen += len(batch)
        if source.speed is not None:
            source.set_speed(None)
    assert seen == 41
    assert time.monotonic() - start < 1.0
    with pytest.raises(ValueError):
        source.set_speed(0)


def test_pause_stops_output(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "long.pcap", 0, 61, step=0.05)  # 3 s at speed 1
    source = ReplaySource([path], speed=1.0)
    collector = Collector(source)
    assert wait_for(lambda: collector.frames >= 3)
    source.pause()
    assert source.paused
    time.sleep(0.1)  # a release already under way may still land
    frozen = collector.frames
    time.sleep(0.4)
    assert collector.frames == frozen < 61
    source.resume()
    assert not source.paused
    assert wait_for(lambda: collector.frames > frozen)
    source.stop()
    collector.thread.join(1.0)
    assert not collector.thread.is_alive()
    assert collector.seqs() == list(range(collector.frames))


def test_step_releases_exactly_n_frames(tmp_path: Path) -> None:
    paths = [write_pcap(tmp_path / "s1.pcap", 0, 4), write_pcap(tmp_path / "s2.pcap", 4, 6)]
    source = ReplaySource(paths)
    source.pause()
    collector = Collector(source)
    time.sleep(0.15)
    assert collector.frames == 0
    source.step(3)
    assert wait_for(lambda: collector.frames >= 3)
    time.sleep(0.15)
    assert collector.frames == 3
    source.step(2)  # crosses into the second file
    assert wait_for(lambda: collector.frames >= 5)
    time.sleep(0.15)
    assert collector.frames == 5
    assert collector.seqs() == [0, 1, 2, 3, 4]
    assert source.paused
    source.resume()
    collector.thread.join(2.0)
    assert collector.seqs() == list(range(10))
    with pytest.raises(ValueError):
        source.step(0)


def test_step_pauses_a_paced_replay(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "paced-step.pcap", 0, 30, step=1.0)  # 30 s of capture
    source = ReplaySource([path], speed=1.0)
    source.step(2)  # pauses, then releases two frames regardless of their schedule
    collector = Collector(source)
    assert wait_for(lambda: collector.frames >= 2)
    time.sleep(0.15)
    assert collector.frames == 2
    source.stop()
    collector.thread.join(1.0)
    assert not collector.thread.is_alive()


def test_progress_totals(tmp_path: Path) -> None:
    paths = [write_pcap(tmp_path / "p1.pcap", 0, 30), write_pcapng(tmp_path / "p2.pcapng", 30, 12)]
    sizes = sum(Path(p).stat().st_size for p in paths)
    source = ReplaySource(paths)
    before = source.progress()
    assert before.frames_done == 0
    assert before.bytes_total == sizes
    assert before.file_count == 2
    assert not before.finished
    iterator = source.batches()
    next(iterator)
    middle = source.progress()
    assert middle.frames_done == 30
    assert middle.file_index == 0
    assert 0 < middle.bytes_done <= Path(paths[0]).stat().st_size
    assert middle.capture_ts == pytest.approx(T0 + 29 * 0.01)
    rest = list(iterator)
    assert sum(len(b) for b in rest) == 12
    assert wait_for(lambda: source.progress().frames_total is not None)
    done = source.progress()
    assert done.frames_total == 42
    assert done.frames_done == 42
    assert done.bytes_done == done.bytes_total == sizes
    assert done.file_index == 1
    assert done.finished
    assert done.fraction == 1.0


def test_damaged_files_warn_and_replay_continues(tmp_path: Path) -> None:
    good1 = write_pcap(tmp_path / "good1.pcap", 0, 5)
    missing = str(tmp_path / "missing.pcap")
    truncated = write_pcap(tmp_path / "truncated.pcap", 5, 4)
    data = Path(truncated).read_bytes()
    Path(truncated).write_bytes(data[:-10])  # the last record loses its end
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a capture file\n")
    good2 = write_pcapng(tmp_path / "good2.pcapng", 20, 3)
    source = ReplaySource([good1, missing, truncated, str(junk), good2])
    batches = list(source.batches())
    assert all_seqs(batches) == [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22]
    warnings = source.stats.warnings
    assert len(warnings) == 3
    assert any(missing in w for w in warnings)
    assert any(truncated in w and "truncated" in w for w in warnings)
    assert any(str(junk) in w for w in warnings)
    assert source.stats.files_done == 5
    assert wait_for(lambda: source.progress().frames_total is not None)
    assert source.progress().frames_total == 11


def test_stop_while_paused(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "stop.pcap", 0, 10)
    source = ReplaySource([path], speed=1.0)
    source.pause()
    collector = Collector(source)
    time.sleep(0.1)
    start = time.monotonic()
    source.stop()
    collector.thread.join(1.0)
    assert not collector.thread.is_alive()
    assert time.monotonic() - start < 0.5
    assert collector.frames == 0
    assert source.progress().finished


def test_stop_while_waiting_for_a_frame(tmp_path: Path) -> None:
    packets = _packets(0, 1) + _packets(1, 1, start=T0 + 60)
    path = str(tmp_path / "wait.pcap")
    wrpcap(path, packets)
    source = ReplaySource([path], speed=1.0)  # waits max_gap (5 s) for the second frame
    collector = Collector(source)
    assert wait_for(lambda: collector.frames == 1)
    start = time.monotonic()
    source.stop()
    collector.thread.join(1.0)
    assert not collector.thread.is_alive()
    assert time.monotonic() - start < 0.5
    assert collector.frames == 1


def test_replay_reads_in_small_chunks_and_loses_no_frame_at_their_edges(tmp_path: Path) -> None:
    # ~2.4 MB of frames: more than two of the replay's 1 MiB reads. Every frame arrives once, in
    # order, and no batch refers to a buffer bigger than one read (plus the record it continued).
    packets = _packets(0, 4000)
    for p in packets:
        p.add_payload(b"." * 560)
    path = tmp_path / "big.pcap"
    wrpcap(str(path), packets)
    assert path.stat().st_size > 2 * REPLAY_CHUNK_BYTES
    batches = list(ReplaySource([str(path)]).batches())
    assert [int(b.frame(i)[-566:-560]) for b in batches for i in range(len(b))] == list(range(4000))
    assert max(b.data.shape[0] for b in batches) <= REPLAY_CHUNK_BYTES + 65_536
    # The same with chunks that cut nearly every record (pcapng as well).
    ng = write_pcapng(tmp_path / "small.pcapng", 0, 300)
    for name in (write_pcap(tmp_path / "small.pcap", 0, 300), ng):
        got = list(ReplaySource([name], chunk_bytes=97).batches())
        assert all_seqs(got) == list(range(300))
