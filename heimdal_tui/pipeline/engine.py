"""The packet pipeline: frames in, decoded columns, flows, devices and identity out.

``Pipeline.feed(batch)`` runs one FrameBatch through header decoding, application parsing, the flow
table and the device table, and returns what the batch changed (for detectors and the console).
It holds no threads: the capture worker feeds it from the consumer side.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.decode.app_select import AppEvent, AppParser, candidate_rows
from heimdal_tui.decode.headers import decode_headers
from heimdal_tui.devices.directory import DeviceDirectory
from heimdal_tui.devices.locality import DEFAULT_LOCAL_NETWORKS, Locality
from heimdal_tui.devices.table import DeviceLimits, DeviceTable, device_keys
from heimdal_tui.flows.table import FlowTable, FlowTimeouts


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    local_networks: tuple[str, ...] = DEFAULT_LOCAL_NETWORKS
    device_limits: DeviceLimits = field(default_factory=DeviceLimits)
    flow_timeouts: FlowTimeouts = field(default_factory=FlowTimeouts)
    max_flows: int = 200_000


@dataclass
class PipelineStats:
    frames: int = 0
    captured_bytes: int = 0
    wire_bytes: int = 0
    decoded: int = 0
    decode_errors: Counter[str] = field(default_factory=Counter)
    app_errors: Counter[str] = field(default_factory=Counter)
    app_messages: Counter[str] = field(default_factory=Counter)
    first_ts: float | None = None
    last_ts: float | None = None
    busy_seconds: float = 0.0

    @property
    def decode_error_count(self) -> int:
        return sum(self.decode_errors.values())


@dataclass
class BatchResult:
    """What one batch produced; detectors subscribe to these."""

    packets: pl.DataFrame
    app_events: list[AppEvent]
    new_flows: pl.DataFrame
    ended_flows: pl.DataFrame
    new_devices: list[int]
    evicted_devices: list[int]


class Pipeline:
    def __init__(self, settings: PipelineSettings | None = None) -> None:
        self.settings = settings or PipelineSettings()
        self.locality = Locality(self.settings.local_networks)
        self.devices = DeviceTable(self.locality, self.settings.device_limits)
        self.flows = FlowTable(self.settings.flow_timeouts, self.settings.max_flows)
        self.directory = DeviceDirectory(self.locality)
        self.app_parser = AppParser()
        self.stats = PipelineStats()

    def feed(self, batch: FrameBatch) -> BatchResult:
        started = time.perf_counter()
        st = self.stats
        st.frames += len(batch)
        st.captured_bytes += batch.captured_bytes
        st.wire_bytes += batch.wire_bytes
        decoded = decode_headers(batch)
        st.decode_errors.update(decoded.errors)
        st.decoded += len(decoded)
        if len(decoded):
            first, last = float(decoded.ts.min()), float(decoded.ts.max())
            st.first_ts = first if st.first_ts is None else min(st.first_ts, first)
            st.last_ts = last if st.last_ts is None else max(st.last_ts, last)

        events = self.app_parser.parse_rows(decoded, candidate_rows(decoded), st.app_errors)
        for ev in events:
            st.app_messages[type(ev.message).__name__] += 1
        columns = decoded.columns()
        packets = pl.DataFrame(columns)
        new_flows, ended_flows = self.flows.update_columns(columns)
        update = self.devices.update_columns(columns)
        if packets.height:
            packets = packets.with_columns(
                pl.Series("src_dev", update.src_dev, dtype=pl.UInt64),
                pl.Series("dst_dev", update.dst_dev, dtype=pl.UInt64),
            )
        new_flows = with_flow_devices(new_flows, self.locality)
        ended_flows = with_flow_devices(ended_flows, self.locality)
        directory = self.directory
        directory.ensure(update.new_devices)
        directory.forget(update.evicted_devices)
        directory.ingest(events)
        self._fold_flow_ports(new_flows, ended_flows)
        self.devices.add_name_sightings(directory.take_pending_sightings())
        pending_ips = directory.take_pending_ips()
        if pending_ips.height:
            self.devices.add_ips(pending_ips)
        if update.new_devices or events:
            directory.apply_local_names(self.devices.ips)
        st.busy_seconds += time.perf_counter() - started
        return BatchResult(
            packets, events, new_flows, ended_flows, update.new_devices, update.evicted_devices
        )

    def finish(self) -> pl.DataFrame:
        """End of input: close every open flow and fold it in; returns the flows closed."""
        ended = with_flow_devices(self.flows.close_all(), self.locality)
        self._fold_flow_ports(ended.clear(), ended)
        return ended

    def _fold_flow_ports(self, new_flows: pl.DataFrame, ended_flows: pl.DataFrame) -> None:
        """Client ports (what a device connects to) from new flows; served ports once answered."""
        parts: list[tuple[np.ndarray, ...]] = []
        # A served port is known once the responder answered; it counts as a flow when the flow ends
        # (new flows add it with a count of 0 so it shows while the flow is still open).
        for flows, roles in ((new_flows, ("client", "server")), (ended_flows, ("server",))):
            if flows.height == 0:
                continue
            proto = flows["proto"].to_numpy()
            port = flows["resp_p"].to_numpy()
            first = flows["first_ts"].to_numpy()
            last = flows["last_ts"].to_numpy()
            for role in roles:
                counted = role == "client" or flows is ended_flows
                keys = flows["orig_dev" if role == "client" else "resp_dev"].to_numpy()
                mask = keys != 0
                if role == "server":
                    # Served means answered: a TCP SYN-ACK (a reset to a scan probe is not a
                    # service), or any UDP reply.
                    syn_ack = (flows["resp_flags"].to_numpy() & 0x12) == 0x12
                    replied = flows["resp_pkts"].to_numpy() > 0
                    mask &= ((proto == 6) & syn_ack) | ((proto == 17) & replied)
                rows = np.flatnonzero(mask)
                if rows.shape[0]:
                    role_code = np.full(rows.shape[0], _ROLES.index(role), dtype=np.int64)
                    counts = np.full(rows.shape[0], int(counted), dtype=np.int64)
                    parts.append(
                        (keys[rows], proto[rows], port[rows], role_code, first[rows], last[rows], counts)
                    )
        if not parts:
            return
        columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
        frame = pl.DataFrame(
            dict(
                zip(
                    ("device", "proto", "port", "role", "first_seen", "last_seen", "flows"),
                    columns,
                    strict=True,
                )
            )
        )
        self.devices.add_ports(
            frame.group_by("device", "proto", "port", "role")
            .agg(pl.col("first_seen").min(), pl.col("last_seen").max(), pl.col("flows").sum())
            .with_columns(pl.col("role").replace_strict(range(len(_ROLES)), _ROLES, return_dtype=pl.String))
        )


_ROLES = ("client", "server")


def with_flow_devices(flows: pl.DataFrame, locality: Locality) -> pl.DataFrame:
    """``flows`` plus ``orig_dev`` / ``resp_dev``: the device key of each local side, else 0."""
    if flows.height == 0:
        return flows.with_columns(
            pl.lit(0, dtype=pl.UInt64).alias("orig_dev"), pl.lit(0, dtype=pl.UInt64).alias("resp_dev")
        )
    columns = []
    for side in ("orig", "resp"):
        hi = flows[f"{side}_hi"].to_numpy()
        lo = flows[f"{side}_lo"].to_numpy()
        keys = np.where(locality.local(hi, lo), device_keys(flows[f"{side}_mac"].to_numpy(), hi, lo), 0)
        columns.append(pl.Series(f"{side}_dev", keys.astype(np.uint64), dtype=pl.UInt64))
    return flows.with_columns(columns)
