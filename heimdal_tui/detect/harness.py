"""Building BatchContexts from capture files: the bridge from the pipeline to detectors.

Used by the detection engine and by detector tests (run a capture, collect findings) alike.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from operator import attrgetter

import numpy as np
import polars as pl

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.decode.app_select import AppEvent
from heimdal_tui.detect.context import BatchContext, DeviceRef
from heimdal_tui.devices.directory import Identity
from heimdal_tui.devices.identity import DeviceTypeGuess
from heimdal_tui.devices.locality import address_text, mac_text
from heimdal_tui.pipeline.engine import BatchResult, Pipeline, PipelineSettings

MAC_KEY_LIMIT = 1 << 48


def device_ref(pipeline: Pipeline, key: int) -> DeviceRef:
    """How to name device ``key`` in an alert: MAC, first address, hostname, guessed type."""
    ident = pipeline.directory.identities.get(key)
    mac = mac_text(key) if key < MAC_KEY_LIMIT else None
    ip = pipeline.devices.first_ip(key)
    name = ident.hostname if ident else None
    kind = ident.guess().type if ident else "unknown"
    if ip is None and key >= MAC_KEY_LIMIT and key >> 60 == 1:
        ip = address_text(0, 0xFFFF00000000 | (key & 0xFFFFFFFF))
    return DeviceRef(key=key, mac=mac, ip=ip, name=name, type=kind)


class DeviceRefs:
    """What ``device_ref`` needs across batches, for one pipeline: each device's last ref, and the
    sending device of each source (MAC, address) of application messages.

    A ref is made again only when what it shows changed: the device's hostname, its guessed type
    or its first address (its MAC comes from the key). An identity whose evidence grew keeps its
    ref while the guess names the same type. Addresses are ranked once per state of the address
    table (DeviceTable.ips is a new frame whenever it changes).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        # key -> (ref, the first address it was made from)
        self.refs: dict[int, tuple[DeviceRef, tuple[int, int] | None]] = {}
        self.senders: dict[tuple[int, int, int], int | None] = {}
        self._ranked: pl.DataFrame | None = None
        self._first_ips: dict[int, tuple[int, int]] = {}

    def first_ips(self) -> dict[int, tuple[int, int]]:
        """:func:`first_ips` of the pipeline's address table as it is now."""
        ips = self.pipeline.devices.ips
        if ips is not self._ranked:
            self._first_ips = first_ips(ips)
            self._ranked = ips
        return self._first_ips

    def ref(self, key: int, firsts: dict[int, tuple[int, int]]) -> DeviceRef:
        """Device ``key``'s ref, ``firsts`` being every device's first address now."""
        ident = self.pipeline.directory.identities.get(key)
        guess = ident.guess() if ident is not None else None
        pair = firsts.get(key)
        kept = self.refs.get(key)
        if kept is not None:
            ref, kept_pair = kept
            if (
                kept_pair == pair
                and ref.type == (guess.type if guess is not None else "unknown")
                and ref.name == (ident.hostname if ident is not None else None)
            ):
                return ref
        ref = _make_ref(key, ident, guess, pair)
        if len(self.refs) >= MAX_KEPT and key not in self.refs:
            self.refs.clear()
        self.refs[key] = (ref, pair)
        return ref

    def senders_of(self, events: Sequence[AppEvent]) -> list[int | None]:
        """DeviceDirectory.sender of each event. It depends on the event's source MAC and address
        alone (the directory's locality is the pipeline's, fixed), so each source is resolved once."""
        sender = self.pipeline.directory.sender
        senders = self.senders
        if len(senders) >= MAX_KEPT:
            senders.clear()
        # C-level passes: each event's source, one event per source, then each source's sender.
        sources = list(map(_source, events))
        for source, ev in dict(zip(sources, events, strict=True)).items():
            if source not in senders:
                senders[source] = sender(ev)
        return list(map(senders.__getitem__, sources))


_source = attrgetter("src_mac", "src_hi", "src_lo")
MAX_KEPT = 65_536  # refs and senders kept per pipeline (cleared when full; devices are capped far lower)
_kept: weakref.WeakKeyDictionary[Pipeline, DeviceRefs] = weakref.WeakKeyDictionary()


def kept_refs(pipeline: Pipeline) -> DeviceRefs:
    """``pipeline``'s DeviceRefs (made on first use, gone with the pipeline): the engine, the
    sensor session and the tests all build contexts through :func:`context_for`."""
    found = _kept.get(pipeline)
    if found is None:
        found = _kept[pipeline] = DeviceRefs(pipeline)
    return found


def _ip_text(key: int, pair: tuple[int, int] | None) -> str | None:
    """The address a ref shows: the device's first one, else the one its key holds (IP keys)."""
    if pair is not None:
        return address_text(*pair)
    if key >= MAC_KEY_LIMIT and key >> 60 == 1:
        return address_text(0, 0xFFFF00000000 | (key & 0xFFFFFFFF))
    return None


def _make_ref(
    key: int, ident: Identity | None, guess: DeviceTypeGuess | None, pair: tuple[int, int] | None
) -> DeviceRef:
    return DeviceRef(
        key=key,
        mac=mac_text(key) if key < MAC_KEY_LIMIT else None,
        ip=_ip_text(key, pair),
        name=ident.hostname if ident is not None else None,
        type=guess.type if guess is not None else "unknown",
    )


class BatchDeviceRefs:
    """``device_ref`` for one batch, memoized: the pipeline does not change while detectors look at
    a batch, and the findings of a batch name the same few devices again and again. A ref made in
    an earlier batch is taken again while still right (see :class:`DeviceRefs`).

    On the first lookup the addresses of every device are ranked in one pass (the same order as
    DeviceTable.first_ip: IPv4 first, then the most recently used): one table filter per device
    costs as much as ranking them all.
    """

    def __init__(self, pipeline: Pipeline, kept: DeviceRefs | None = None) -> None:
        self.pipeline = pipeline
        self.kept = kept if kept is not None else DeviceRefs(pipeline)
        self.refs: dict[int, DeviceRef] = {}
        self.first_ips: dict[int, tuple[int, int]] | None = None

    def __call__(self, key: int) -> DeviceRef:
        ref = self.refs.get(key)
        if ref is None:
            if self.first_ips is None:
                self.first_ips = self.kept.first_ips()
            ref = self.refs[key] = self.kept.ref(key, self.first_ips)
        return ref

    def release(self) -> None:
        """Let the address ranking go (a dict over every device: ~150 kB with 1,000 of them) once
        the batch is done; the refs made stay. A later lookup ranks again."""
        self.first_ips = None


def first_ips(ips: pl.DataFrame) -> dict[int, tuple[int, int]]:
    """Device -> (hi, lo) of its most recently used address, IPv4 preferred (DeviceTable.first_ip
    for every device at once)."""
    if ips.height == 0:
        return {}
    device, hi, lo = (ips[name].to_numpy() for name in ("device", "ip_hi", "ip_lo"))
    # By device, IPv4 first, then the newest; lexsort is stable: ties keep the table's order.
    order = np.lexsort((-ips["last_seen"].to_numpy(), hi != 0, device))
    ranked = device[order]
    first = np.ones(ranked.shape[0], dtype=bool)
    first[1:] = ranked[1:] != ranked[:-1]
    picked = order[first]
    pairs = zip(hi[picked].tolist(), lo[picked].tolist(), strict=True)
    return dict(zip(device[picked].tolist(), pairs, strict=True))


def context_for(pipeline: Pipeline, result: BatchResult) -> BatchContext:
    directory = pipeline.directory
    packets = result.packets
    now = float(packets["ts"].max()) if packets.height else (pipeline.stats.last_ts or 0.0)  # type: ignore[arg-type]
    peer_names = directory.peer_names
    kept = kept_refs(pipeline)
    return BatchContext(
        now=now,
        packets=packets,
        new_flows=result.new_flows,
        ended_flows=result.ended_flows,
        app_events=result.app_events,
        app_devices=kept.senders_of(result.app_events),
        new_devices=result.new_devices,
        locality=pipeline.locality,
        device_ref=BatchDeviceRefs(pipeline, kept),
        peer_name=lambda hi, lo: peer_names.get((hi, lo)),
        first_ts=pipeline.stats.first_ts or now,
    )


def contexts(
    paths: Sequence[str],
    settings: PipelineSettings | None = None,
    pipeline: Pipeline | None = None,
    chunk_bytes: int | None = None,
) -> Iterator[BatchContext]:
    """One context per batch of the capture files, then one for the flows closed at the end.

    ``chunk_bytes`` sets the batch size (in file bytes): detectors must find the same things
    whether a batch holds one packet or a whole capture.
    """
    pipeline = pipeline or Pipeline(settings)
    for path in paths:
        capture = CaptureFile(path) if chunk_bytes is None else CaptureFile(path, chunk_bytes=chunk_bytes)
        for batch in capture.batches():
            yield context_for(pipeline, pipeline.feed(batch))
    ended = pipeline.finish()
    final = BatchResult(
        packets=pipeline_empty_packets(),
        app_events=[],
        new_flows=ended.clear(),
        ended_flows=ended,
        new_devices=[],
        evicted_devices=[],
    )
    yield context_for(pipeline, final)


def pipeline_empty_packets() -> pl.DataFrame:
    from heimdal_tui.decode.headers import PACKET_COLUMNS

    columns = dict.fromkeys(PACKET_COLUMNS, pl.Int64)
    return pl.DataFrame(schema={**columns, "ts": pl.Float64, "src_dev": pl.UInt64, "dst_dev": pl.UInt64})
