"""The vocabulary shared by detectors, alerts, the store and the console: findings and settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from heimdal_tui.detect.context import BatchContext


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def from_score(cls, score: float) -> Severity:
        """The usual mapping of a 0-10 score to a severity (detectors may choose otherwise)."""
        if score >= 9.0:
            return cls.CRITICAL
        if score >= 7.0:
            return cls.HIGH
        if score >= 4.0:
            return cls.MEDIUM
        return cls.LOW


_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}

ALERT_KINDS = (
    "new_device",
    "new_destination",
    "new_port",
    "volume_spike",
    "protocol_anomaly",
    "timing_anomaly",
    "geo_violation",
    "port_scan",
    "arp_spoof",
    "dns_tunnel",
    "beaconing",
    "brute_force",
    "threat_intel",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector's claim that something is wrong, with the evidence behind it.

    ``device`` is the device key of the local device concerned (the actor, or the victim when the
    actor is remote); ``peer`` the other party as text (an address, a domain, a MAC) or None.
    ``evidence`` is JSON-ready and carries numbers: the observed value, the baseline value beside it
    where there is one, the counts and the window.
    """

    kind: str
    device: int
    peer: str | None
    ts: float
    severity: Severity
    score: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


def setting(
    default: Any, *, minimum: float | None = None, maximum: float | None = None, help: str = ""
) -> Any:
    """A detector setting with its allowed range and a line of help (used by config validation and
    the thresholds screen)."""
    return field(default=default, metadata={"min": minimum, "max": maximum, "help": help})


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Base of every detector's settings; subclasses add their thresholds with :func:`setting`."""

    enabled: bool = setting(True, help="run this detector")


def settings_fields(settings_type: type[DetectorSettings]) -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(settings_type))


class Detector(Protocol):
    """What every detector implements. ``kind`` is the alert kind it raises."""

    kind: ClassVar[str]
    settings_type: ClassVar[type[DetectorSettings]]
    needs_baseline: ClassVar[bool]
    settings: DetectorSettings

    def observe(self, ctx: BatchContext) -> list[Finding]: ...
