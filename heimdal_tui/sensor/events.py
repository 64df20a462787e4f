"""What the sensor tells its consoles: immutable snapshots and changes, JSON-serialisable.

Every event is a frozen dataclass of plain values (str, int, float, bool, None, tuples, dicts of
those). :func:`to_wire` turns one into a JSON-ready dict tagged with its type and
:func:`from_wire` rebuilds it, so the same events travel in-process and over the daemon's socket.

The session coalesces: a StatusEvent at most every ``status_interval`` (a quarter second), a
DevicesEvent and a DriftEvent about once a second, the alerts raised or changed since the last
cycle in one AlertsEvent; never one event per packet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SEVERITY_ORDER = ("critical", "high", "medium", "low")


@dataclass(frozen=True, slots=True)
class ReplayState:
    """Where a replay stands; absent in live capture."""

    speed: float | None  # None: as fast as possible
    paused: bool
    frames_done: int
    frames_total: int | None
    fraction: float | None
    capture_start: float | None
    capture_ts: float | None
    finished: bool
    file_index: int
    file_count: int


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """The sensor as a whole: source, counters, rates, alert counts, learning, store and sync."""

    mode: str  # "live" or "replay"
    source: str  # human description of the source
    state: str  # "starting", "running", "paused", "finished", "failed", "stopped"
    error: str | None
    frames: int
    wire_bytes: int
    packets_per_second: float
    bits_per_second: float
    devices: int
    flows_open: int
    kernel_drops: int | None
    buffer_drops: int
    decode_errors: int
    capture_ts: float | None
    learning: float  # 0..1: how far the sensor is through its learning period
    alerts_open: dict[str, int]  # severity -> open or acknowledged alerts
    alerts_total: int
    pps_history: tuple[float, ...]  # packets/s, one value per second, oldest first
    replay: ReplayState | None = None
    store: str | None = None  # "ok", a degradation message, or None without a store
    sync_depth: int | None = None  # None: sync not configured
    sync_state: str | None = None
    detector_errors: int = 0
    data_dir: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device as the console lists it."""

    key: int
    name: str  # what to call it: the operator's label, else hostname, else address
    label: str | None
    hostname: str | None
    mac: str | None
    vendor: str | None
    type: str
    type_confidence: float
    ips: tuple[str, ...]
    bps: float  # bytes per second over the last 10 s of capture time
    bps_1m: float
    bytes_in: int
    bytes_out: int
    packets: int
    peers: int
    first_seen: float
    last_seen: float
    open_alerts: int
    drift: float | None
    maturity: float  # 0..1 of the baseline's learning
    frozen: bool
    sparkline: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert as the console shows it (Alert.to_dict holds the same with ISO times)."""

    id: str
    kind: str
    severity: str
    score: float
    state: str
    device_key: int
    device_name: str
    device_ip: str | None
    device_mac: str | None
    peer: str | None
    ts: float
    first_seen: float
    last_seen: float
    count: int
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DriftRow:
    """A device's drift: the latest score, its history, and which features moved."""

    key: int
    name: str
    score: float
    ts: float
    history: tuple[float, ...]
    features: dict[str, float]
    moved: tuple[str, ...]
    pending: int  # novel items that accepting the drift would merge


@dataclass(frozen=True, slots=True)
class StatusEvent:
    status: SensorStatus


@dataclass(frozen=True, slots=True)
class DevicesEvent:
    rows: tuple[DeviceRow, ...]


@dataclass(frozen=True, slots=True)
class AlertsEvent:
    """Alerts raised or changed since the last event; ``complete`` means it is every alert known
    (sent on attach), so the receiver replaces its list instead of merging."""

    alerts: tuple[AlertRow, ...]
    complete: bool = False


@dataclass(frozen=True, slots=True)
class DriftEvent:
    rows: tuple[DriftRow, ...]


@dataclass(frozen=True, slots=True)
class SyncEvent:
    """The Asgard link's status (heimdal_tui.asgard SyncStatus.to_dict()), or ``configured`` False."""

    status: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NoticeEvent:
    """Something the operator should read: a warning (damaged capture file), an error (capture
    failed), or information (baseline saved)."""

    level: str  # "information", "warning", "error"
    text: str


SensorEvent = StatusEvent | DevicesEvent | AlertsEvent | DriftEvent | SyncEvent | NoticeEvent

_EVENT_TYPES: dict[str, type] = {
    "status": StatusEvent,
    "devices": DevicesEvent,
    "alerts": AlertsEvent,
    "drift": DriftEvent,
    "sync": SyncEvent,
    "notice": NoticeEvent,
}
_TYPE_NAMES = {cls: name for name, cls in _EVENT_TYPES.items()}


def to_wire(event: SensorEvent) -> dict[str, Any]:
    """``event`` as a JSON-ready dict: ``{"type": ..., **fields}`` (tuples become lists)."""
    return {"type": _TYPE_NAMES[type(event)], **dataclasses.asdict(event)}


def from_wire(data: dict[str, Any]) -> SensorEvent:
    """The event ``to_wire`` produced; ValueError for anything else."""
    kind = data.get("type")
    if kind == "status":
        raw = dict(data["status"])
        replay = raw.pop("replay", None)
        raw["pps_history"] = tuple(raw.get("pps_history") or ())
        status = SensorStatus(**raw, replay=ReplayState(**replay) if replay else None)
        return StatusEvent(status)
    if kind == "devices":
        return DevicesEvent(tuple(_device_row(r) for r in data["rows"]))
    if kind == "alerts":
        return AlertsEvent(tuple(AlertRow(**a) for a in data["alerts"]), bool(data.get("complete")))
    if kind == "drift":
        return DriftEvent(tuple(_drift_row(r) for r in data["rows"]))
    if kind == "sync":
        return SyncEvent(dict(data["status"]))
    if kind == "notice":
        return NoticeEvent(str(data["level"]), str(data["text"]))
    raise ValueError(f"not a sensor event: type {kind!r}")


def _device_row(raw: dict[str, Any]) -> DeviceRow:
    return DeviceRow(**{**raw, "ips": tuple(raw["ips"]), "sparkline": tuple(raw["sparkline"])})


def _drift_row(raw: dict[str, Any]) -> DriftRow:
    return DriftRow(**{**raw, "history": tuple(raw["history"]), "moved": tuple(raw["moved"])})
