"""What the link queues: which alerts, and how often device summaries."""

from __future__ import annotations

from dataclasses import dataclass

from heimdal_tui.config.model import AsgardConfig
from heimdal_tui.detect.alerts import Alert


@dataclass(frozen=True, slots=True)
class EnqueuePolicy:
    """An alert is queued when its severity is listed, once per (alert, severity): when raised and
    again if it escalates, not on every repeat folded into it. Device summaries are queued at most
    once per ``device_interval`` seconds (wall clock), one item per device; a device whose summary
    did not change since the last one is not queued again."""

    severities: frozenset[str] = frozenset({"medium", "high", "critical"})
    devices: bool = True
    device_interval: float = 900.0

    @classmethod
    def from_config(cls, config: AsgardConfig) -> EnqueuePolicy:
        return cls(
            frozenset(config.alert_severities), config.device_summaries, config.device_summary_interval
        )

    def accepts_alert(self, alert: Alert) -> bool:
        return str(alert.severity) in self.severities

    def devices_due(self, now: float, last: float | None) -> bool:
        return self.devices and (last is None or now - last >= self.device_interval)
