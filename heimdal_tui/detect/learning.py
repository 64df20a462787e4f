"""What each device did in a batch, in baseline terms, and the book of baselines that learns it.

For every batch the BaselineBook extracts, per device, the behaviour items a baseline knows about
(destinations, domains, services, protocols, countries, completed minutes of traffic), learns them
while the device is still learning, and hands the same items to the behaviour detectors, which
compare them with mature baselines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import polars as pl

from heimdal_tui.decode.app.dns import DnsMessage
from heimdal_tui.detect.baseline import MINUTE, Baseline, GoldenProfile, maturity, registered_domain
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.geo import CountryLookup
from heimdal_tui.devices.locality import address_text
from heimdal_tui.devices.table import protocol_label
from heimdal_tui.flows.table import PROTO_NAMES

MAX_BASELINES = 4096
_DNS_PORTS = (53, 5355)


def answered() -> pl.Expr:
    """Flows whose responder answered: a TCP SYN-ACK, or any UDP reply."""
    syn_ack = 0x12
    return ((pl.col("proto") == 6) & ((pl.col("resp_flags") & syn_ack) == syn_ack)) | (
        (pl.col("proto") == 17) & (pl.col("resp_pkts") > 0)
    )


def hour_of(ts: float) -> int:
    return datetime.fromtimestamp(ts, UTC).hour


@dataclass(slots=True)
class Item:
    """One behaviour item seen in this batch: ``value`` at capture time ``ts`` (``peer`` for context).

    ``learned`` is set when the item fell inside the device's learning period (the baseline took
    it); detectors comparing with the baseline skip those.
    """

    value: str
    ts: float
    peer: str | None = None
    learned: bool = False


@dataclass(slots=True)
class Minute:
    start: float
    bytes_out: float
    bytes_in: float
    learned: bool = False


@dataclass(slots=True)
class Activity:
    """One device's behaviour items in one batch (each item once, at its first time)."""

    destinations: list[Item] = field(default_factory=list)
    domains: list[Item] = field(default_factory=list)
    services: list[Item] = field(default_factory=list)
    protocols: list[Item] = field(default_factory=list)
    countries: list[Item] = field(default_factory=list)
    minutes: list[Minute] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LearningSettings:
    learning_period: float = 86_400.0
    min_maturity: float = 1.0


class BaselineBook:
    def __init__(
        self,
        settings: LearningSettings | None = None,
        countries: CountryLookup | None = None,
        profiles: dict[str, GoldenProfile] | None = None,
    ) -> None:
        self.settings = settings or LearningSettings()
        self.countries = countries or CountryLookup()
        self.profiles = profiles or {}
        self.baselines: dict[int, Baseline] = {}
        self.sensor_start: float | None = None
        self.now = 0.0
        self.activity: dict[int, Activity] = {}
        self._minutes: dict[tuple[int, int], list[float]] = {}  # (device, minute) -> [out, in]
        self.loaded = False  # baselines came from a file/store: treat them as mature
        self.loaded_devices: set[int] = set()
        self.busy_seconds = 0.0

    # -- maturity ------------------------------------------------------------------------------
    def maturity(self, device: int) -> float:
        base = self.baselines.get(device)
        if base is None or self.sensor_start is None:
            return 0.0
        if self.loaded:
            if device in self.loaded_devices:
                return 1.0
            # Not in the loaded baselines: a newcomer learns for a whole period on its own.
            period = self.settings.learning_period
            return 1.0 if period <= 0 else max(0.0, min((self.now - base.first_seen) / period, 1.0))
        return maturity(base, self.now, self.sensor_start, self.settings.learning_period)

    def mature(self, device: int) -> bool:
        return self.maturity(device) >= self.settings.min_maturity

    @property
    def sensor_mature(self) -> bool:
        if self.sensor_start is None:
            return False
        return self.loaded or self.now - self.sensor_start >= self.settings.learning_period

    def baseline(self, device: int, ts: float, device_type: str = "unknown") -> Baseline:
        base = self.baselines.get(device)
        if base is None:
            base = Baseline(device=device, first_seen=ts, last_seen=ts)
            profile = self.profiles.get(device_type)
            if profile is not None:
                profile.seed(base)
            if len(self.baselines) >= MAX_BASELINES:
                oldest = min(self.baselines.values(), key=lambda b: b.last_seen)
                del self.baselines[oldest.device]
            self.baselines[device] = base
        return base

    # -- per batch ----------------------------------------------------------------------------
    def observe(self, ctx: BatchContext) -> dict[int, Activity]:
        """Extract per-device activity from ``ctx``, learn it where still learning, return it."""
        started = time.perf_counter()
        if ctx.packets.height:
            first = float(ctx.packets["ts"].min())  # type: ignore[arg-type]
            self.sensor_start = first if self.sensor_start is None else min(self.sensor_start, first)
        self.now = max(self.now, ctx.now)
        activity: dict[int, Activity] = {}

        def act(device: int) -> Activity:
            found = activity.get(device)
            if found is None:
                found = activity[device] = Activity()
            return found

        self._flows(ctx, act)
        self._protocols(ctx, act)
        self._dns(ctx, act)
        self._volume(ctx, act)
        for device in ctx.new_devices:
            act(device)
        for device, items in activity.items():
            ts = min((i.ts for i in items.destinations + items.services + items.protocols), default=self.now)
            base = self.baseline(
                device, ts, ctx.device_ref(device).type if not self.baselines.get(device) else ""
            )
            base.last_seen = max(base.last_seen, self.now)
            # Learn what happened before this device's maturity, item by item: a batch may span
            # the end of the learning period.
            self._learn(base, items, self.mature_at(device))
        self.activity = activity
        self.busy_seconds += time.perf_counter() - started
        return activity

    def mature_at(self, device: int) -> float:
        """Capture time at which the device's baseline is (or will be) mature."""
        base = self.baselines.get(device)
        if base is None or self.sensor_start is None:
            return float("inf")
        period = self.settings.learning_period * self.settings.min_maturity
        if self.loaded:
            return float("-inf") if device in self.loaded_devices else base.first_seen + period
        learning_end = self.sensor_start + self.settings.learning_period
        if base.first_seen <= learning_end or base.profile is not None:
            return self.sensor_start + period
        return base.first_seen + period

    def _learn(self, base: Baseline, items: Activity, until: float = float("inf")) -> None:
        if base.frozen:
            until = float("-inf")
        for table in ("destinations", "domains", "services", "protocols", "countries"):
            for item in getattr(items, table):
                if item.ts < until:
                    base.learn(table, item.value)
                    item.learned = True
        for minute in items.minutes:
            if minute.start < until:
                base.learn_minute(minute.start, hour_of(minute.start), minute.bytes_out, minute.bytes_in)
                minute.learned = True

    def learn_items(self, device: int, items: Activity) -> None:
        """Accept ``items`` into the device's baseline (operator accepted the drift / a false positive)."""
        base = self.baselines.get(device)
        if base is not None:
            frozen, base.frozen = base.frozen, False
            self._learn(base, items)
            base.frozen = frozen

    def _flows(self, ctx: BatchContext, act: Callable[[int], Activity]) -> None:
        # New flows give destinations at once; services count once answered, which may be seen only
        # when the flow ends (a scan probe answered by a reset is not a service).
        flows = pl.concat([ctx.new_flows, ctx.ended_flows], how="vertical_relaxed")
        if flows.height == 0:
            return
        loc = ctx.locality
        flows = flows.sort("first_ts").with_columns(answered().alias("answered"))
        orig = flows.filter(pl.col("orig_dev") != 0)
        for device, proto, port, ts, hi, lo in (
            orig.filter(pl.col("answered") & pl.col("proto").is_in([6, 17]))
            .unique(["orig_dev", "proto", "resp_p"], keep="first", maintain_order=True)
            .select("orig_dev", "proto", "resp_p", "first_ts", "resp_hi", "resp_lo")
            .iter_rows()
        ):
            act(int(device)).services.append(Item(f"{PROTO_NAMES[proto]}/{port}", ts, address_text(hi, lo)))
        remote = orig.filter(pl.col("resp_dev") == 0).unique(
            ["orig_dev", "resp_hi", "resp_lo"], keep="first", maintain_order=True
        )
        for device, hi, lo, ts in remote.select("orig_dev", "resp_hi", "resp_lo", "first_ts").iter_rows():
            if not bool(loc.unicast(np.array([hi], dtype=np.uint64), np.array([lo], dtype=np.uint64))[0]):
                continue
            a = act(int(device))
            peer = address_text(hi, lo)
            a.destinations.append(Item(peer, ts, peer))
            name = ctx.peer_name(hi, lo)
            if name:
                a.domains.append(Item(registered_domain(name), ts, peer))
            country = self.countries.country(int(hi), int(lo))
            if country:
                a.countries.append(Item(country, ts, peer))
        served = flows.filter((pl.col("resp_dev") != 0) & answered())
        for device, proto, port, ts, ohi, olo in (
            served.unique(["resp_dev", "proto", "resp_p"], keep="first", maintain_order=True)
            .select("resp_dev", "proto", "resp_p", "first_ts", "orig_hi", "orig_lo")
            .iter_rows()
        ):
            act(int(device)).services.append(
                Item(f"{PROTO_NAMES[proto]}/{port} (served)", ts, address_text(ohi, olo))
            )

    def _protocols(self, ctx: BatchContext, act: Callable[[int], Activity]) -> None:
        packets = ctx.packets
        if packets.height == 0:
            return
        seen = (
            packets.filter(pl.col("src_dev") != 0)
            .group_by("src_dev", "eth_type", "proto")
            .agg(pl.col("ts").min())
        )
        for device, eth_type, proto, ts in seen.iter_rows():
            act(int(device)).protocols.append(Item(protocol_label(int(eth_type), int(proto)), ts))

    def _dns(self, ctx: BatchContext, act: Callable[[int], Activity]) -> None:
        for ev, device in zip(ctx.app_events, ctx.app_devices, strict=True):
            msg = ev.message
            if device is None or not isinstance(msg, DnsMessage) or msg.is_response:
                continue
            if ev.dport not in _DNS_PORTS:
                continue
            for qname, _qtype in msg.questions:
                if qname:
                    act(device).domains.append(Item(registered_domain(qname), ev.ts, qname))

    def _volume(self, ctx: BatchContext, act: Callable[[int], Activity]) -> None:
        packets = ctx.packets
        if packets.height:
            minute = (pl.col("ts") / MINUTE).floor().cast(pl.Int64).alias("minute")
            out = (
                packets.filter(pl.col("src_dev") != 0)
                .group_by(pl.col("src_dev").alias("dev"), minute)
                .agg(pl.col("wire_len").sum().alias("bytes"))
            )
            inbound = (
                packets.filter(pl.col("dst_dev") != 0)
                .group_by(pl.col("dst_dev").alias("dev"), minute)
                .agg(pl.col("wire_len").sum().alias("bytes"))
            )
            for direction, frame in ((0, out), (1, inbound)):
                for device, m, value in frame.iter_rows():
                    slot = self._minutes.setdefault((int(device), int(m)), [0.0, 0.0])
                    slot[direction] += float(value)
        # A minute is complete once capture time has moved past it.
        current = int(self.now // MINUTE)
        for key in [k for k in self._minutes if k[1] < current]:
            out_bytes, in_bytes = self._minutes.pop(key)
            act(key[0]).minutes.append(Minute(key[1] * MINUTE, out_bytes, in_bytes))

    def flush_minutes(self) -> dict[int, Activity]:
        """End of input: complete the minutes still open."""
        activity: dict[int, Activity] = {}
        for (device, m), (out_bytes, in_bytes) in sorted(self._minutes.items()):
            activity.setdefault(device, Activity()).minutes.append(Minute(m * MINUTE, out_bytes, in_bytes))
        self._minutes.clear()
        return activity

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {
            "format": "heimdal-baselines",
            "version": 1,
            "sensor_start": self.sensor_start,
            "now": self.now,
            "learning_period": self.settings.learning_period,
            "devices": [b.to_dict() for b in self.baselines.values()],
        }

    def load_dict(self, data: dict[str, object]) -> None:
        if data.get("format") != "heimdal-baselines":
            raise ValueError("not a heimdal baseline file (missing format: heimdal-baselines)")
        devices = data.get("devices")
        if not isinstance(devices, list):
            raise ValueError("baseline file: 'devices' must be a list")
        for entry in devices:
            base = Baseline.from_dict(entry)
            self.baselines[base.device] = base
        self.loaded = True
        self.loaded_devices = set(self.baselines)
