"""Scenario model: devices, the capture timeline, incidents, and the ground-truth document.

A scenario generator produces a :class:`ScenarioRun`: the frames (a :class:`FrameLog`) plus what
is true about them. Incident time spans and packet counts are measured from the frames that the
incident actually emitted, so the truth file can never drift from the pcap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from heimdal_tui.samples.writer import FrameLog

GENERATOR = "heimdal_tui.samples"

INCIDENT_KINDS = (
    "geo_violation",
    "port_scan",
    "volume_spike",
    "dns_tunnel",
    "arp_spoof",
    "beaconing",
    "brute_force",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(t_us: int) -> str:
    """``2026-03-02T08:21:30.123456Z`` for a time in microseconds since the epoch."""
    stamp = (_EPOCH + timedelta(microseconds=t_us)).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")


def epoch_us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class Device:
    """One LAN device: identity (what a monitor can learn about it) and how its stack behaves."""

    name: str  # stable id used in the truth file, e.g. "iphone"
    label: str  # human name, e.g. "Anna's iPhone"
    type: str  # router, phone, laptop, tv, printer, smart_plug, camera, nas
    mac: str
    ip: str
    vendor: str  # who made the device
    oui_vendor: str | None  # what the IEEE OUI registry says for the MAC (None: randomized MAC)
    hostname: str
    model: str
    os: str
    dhcp_vendor_class: str | None = None
    dhcp_params: tuple[int, ...] = ()
    mac_randomized: bool = False
    tcp_stack: str = "linux"  # SYN option layout: linux, apple, windows, lwip
    ttl: int = 64
    tls_profile: str = "openssl"
    dns_qtypes: tuple[str, ...] = ("A",)

    def truth(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "mac": self.mac,
            "ip": self.ip,
            "vendor": self.vendor,
            "oui_vendor": self.oui_vendor,
            "mac_randomized": self.mac_randomized,
            "type": self.type,
            "hostname": self.hostname,
            "model": self.model,
            "os": self.os,
            "dhcp_vendor_class": self.dhcp_vendor_class,
        }


@dataclass(frozen=True)
class Timeline:
    """Capture window and learning stretch, in microseconds since the epoch."""

    capture_start_us: int
    capture_end_us: int
    learning_end_us: int

    def at(self, seconds: float) -> int:
        """The instant ``seconds`` after the capture starts."""
        return self.capture_start_us + round(seconds * 1_000_000)

    @property
    def duration_s(self) -> float:
        return (self.capture_end_us - self.capture_start_us) / 1_000_000


@dataclass
class Incident:
    """Ground truth for one injected incident; ``tag`` marks its frames in the FrameLog."""

    tag: str
    kind: str
    device: Device
    description: str
    peer: str | None = None
    peer_ip: str | None = None
    peer_domain: str | None = None
    peer_country: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    start_us: int = 0
    end_us: int = 0
    packets: int = 0
    wire_bytes: int = 0

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r}")

    def truth(self) -> dict[str, Any]:
        return {
            "id": self.tag,
            "kind": self.kind,
            "device": {"name": self.device.name, "mac": self.device.mac, "ip": self.device.ip},
            "start": iso_utc(self.start_us),
            "end": iso_utc(self.end_us),
            "start_ts": self.start_us / 1_000_000,
            "end_ts": self.end_us / 1_000_000,
            "peer": self.peer,
            "peer_ip": self.peer_ip,
            "peer_domain": self.peer_domain,
            "peer_country": self.peer_country,
            "description": self.description,
            "packets": self.packets,
            "wire_bytes": self.wire_bytes,
            "details": self.details,
        }


@dataclass
class ScenarioRun:
    """A generated capture and its ground truth."""

    scenario: str
    seed: int
    description: str
    timeline: Timeline
    devices: list[Device]
    incidents: list[Incident]
    log: FrameLog

    def measure_incidents(self) -> None:
        """Set each incident's span, packet and byte counts from the frames it emitted."""
        spans: dict[str, list[int]] = {}
        for t_us, _, _, wire_len, tag in self.log.records:
            if not tag:
                continue
            span = spans.setdefault(tag, [t_us, t_us, 0, 0])
            span[0] = min(span[0], t_us)
            span[1] = max(span[1], t_us)
            span[2] += 1
            span[3] += wire_len
        for incident in self.incidents:
            if incident.tag not in spans:
                raise RuntimeError(f"incident {incident.tag} emitted no frames")
            incident.start_us, incident.end_us, incident.packets, incident.wire_bytes = spans[incident.tag]
        self.incidents.sort(key=lambda i: (i.start_us, i.tag))

    def truth(self, pcap_name: str, sha256: str) -> dict[str, Any]:
        tl = self.timeline
        return {
            "scenario": self.scenario,
            "description": self.description,
            "seed": self.seed,
            "generator": GENERATOR,
            "pcap": pcap_name,
            "pcap_sha256": sha256,
            "packets": len(self.log),
            "capture_start": iso_utc(tl.capture_start_us),
            "capture_end": iso_utc(tl.capture_end_us),
            "capture_start_ts": tl.capture_start_us / 1_000_000,
            "capture_end_ts": tl.capture_end_us / 1_000_000,
            "learning_end": iso_utc(tl.learning_end_us),
            "learning_end_ts": tl.learning_end_us / 1_000_000,
            "network": {"subnet": "192.168.1.0/24", "gateway": "192.168.1.1"},
            "devices": [d.truth() for d in self.devices],
            "incidents": [i.truth() for i in self.incidents],
        }
