"""Building BatchContexts from capture files: the bridge from the pipeline to detectors.

Used by the detection engine and by detector tests (run a capture, collect findings) alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import polars as pl

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.context import BatchContext, DeviceRef
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


class BatchDeviceRefs:
    """``device_ref`` for one batch, memoized: the pipeline does not change while detectors look at
    a batch, and the findings of a batch name the same few devices again and again.

    On the first lookup the addresses of every device are ranked in one pass (the same order as
    DeviceTable.first_ip: IPv4 first, then the most recently used): one table filter per device
    costs as much as ranking them all.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.refs: dict[int, DeviceRef] = {}
        self.first_ips: dict[int, tuple[int, int]] | None = None

    def __call__(self, key: int) -> DeviceRef:
        ref = self.refs.get(key)
        if ref is None:
            ref = self.refs[key] = self._build(key)
        return ref

    def _first_ip(self, key: int) -> str | None:
        if self.first_ips is None:
            self.first_ips = first_ips(self.pipeline.devices.ips)
        pair = self.first_ips.get(key)
        return None if pair is None else address_text(*pair)

    def _build(self, key: int) -> DeviceRef:
        pipeline = self.pipeline
        ident = pipeline.directory.identities.get(key)
        mac = mac_text(key) if key < MAC_KEY_LIMIT else None
        ip = self._first_ip(key)
        name = ident.hostname if ident else None
        kind = ident.guess().type if ident else "unknown"
        if ip is None and key >= MAC_KEY_LIMIT and key >> 60 == 1:
            ip = address_text(0, 0xFFFF00000000 | (key & 0xFFFFFFFF))
        return DeviceRef(key=key, mac=mac, ip=ip, name=name, type=kind)


def first_ips(ips: pl.DataFrame) -> dict[int, tuple[int, int]]:
    """Device -> (hi, lo) of its most recently used address, IPv4 preferred (DeviceTable.first_ip
    for every device at once)."""
    if ips.height == 0:
        return {}
    ranked = (
        ips.with_columns((pl.col("ip_hi") == 0).alias("v4"))
        .sort(["device", "v4", "last_seen"], descending=[False, True, True], maintain_order=True)
        .unique("device", keep="first", maintain_order=True)
    )
    pairs = zip(ranked["ip_hi"].to_list(), ranked["ip_lo"].to_list(), strict=True)
    return dict(zip(ranked["device"].to_list(), pairs, strict=True))


def context_for(pipeline: Pipeline, result: BatchResult) -> BatchContext:
    directory = pipeline.directory
    packets = result.packets
    now = float(packets["ts"].max()) if packets.height else (pipeline.stats.last_ts or 0.0)  # type: ignore[arg-type]
    peer_names = directory.peer_names
    return BatchContext(
        now=now,
        packets=packets,
        new_flows=result.new_flows,
        ended_flows=result.ended_flows,
        app_events=result.app_events,
        app_devices=[directory.sender(ev) for ev in result.app_events],
        new_devices=result.new_devices,
        locality=pipeline.locality,
        device_ref=BatchDeviceRefs(pipeline),
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
