"""What the console knows of the sensor: the newest of each event, merged. No textual here.

Screens read this and never hold sensor data of their own; ``versions`` tells them what changed
since they last drew, so a refresh redraws only what moved.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from heimdal_tui.sensor.events import (
    AlertRow,
    AlertsEvent,
    DeviceRow,
    DevicesEvent,
    DriftEvent,
    DriftRow,
    NoticeEvent,
    SensorEvent,
    SensorStatus,
    StatusEvent,
    SyncEvent,
)

PARTS = ("status", "devices", "alerts", "drift", "sync")
MAX_NOTICES = 200
# Alerts kept by the console (the sensor keeps its own bound); the oldest closed go first.
MAX_ALERTS = 20_000


@dataclass
class ConsoleState:
    status: SensorStatus | None = None
    devices: dict[int, DeviceRow] = field(default_factory=dict)  # busiest first
    alerts: dict[str, AlertRow] = field(default_factory=dict)
    drift: dict[int, DriftRow] = field(default_factory=dict)  # most drifted first
    sync: dict[str, Any] | None = None
    notices: deque[NoticeEvent] = field(default_factory=lambda: deque(maxlen=MAX_NOTICES))
    versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))
    # Alert ids in the order they arrived, and which arrived since the alerts screen last looked.
    arrivals: list[str] = field(default_factory=list)
    unseen_notices: list[NoticeEvent] = field(default_factory=list)

    def apply(self, event: SensorEvent) -> str | None:
        """Merge ``event``; the part it changed (or None for a notice)."""
        if isinstance(event, StatusEvent):
            self.status = event.status
            return self._bump("status")
        if isinstance(event, DevicesEvent):
            self.devices = {row.key: row for row in event.rows}
            return self._bump("devices")
        if isinstance(event, AlertsEvent):
            if event.complete:
                self.alerts = {}
                self.arrivals = []
            for row in event.alerts:
                if row.id not in self.alerts:
                    self.arrivals.append(row.id)
                self.alerts[row.id] = row
            self._trim_alerts()
            return self._bump("alerts")
        if isinstance(event, DriftEvent):
            self.drift = {row.key: row for row in event.rows}
            return self._bump("drift")
        if isinstance(event, SyncEvent):
            self.sync = event.status
            return self._bump("sync")
        if isinstance(event, NoticeEvent):
            self.notices.append(event)
            self.unseen_notices.append(event)
            return None
        raise TypeError(f"not a sensor event: {event!r}")

    def take_notices(self) -> list[NoticeEvent]:
        notices, self.unseen_notices = self.unseen_notices, []
        return notices

    def newest_alerts(self, n: int) -> list[AlertRow]:
        return sorted(self.alerts.values(), key=lambda a: (a.last_seen, a.id), reverse=True)[:n]

    def _bump(self, part: str) -> str:
        self.versions[part] += 1
        return part

    def _trim_alerts(self) -> None:
        excess = len(self.alerts) - MAX_ALERTS
        if excess <= 0:
            return
        closed = [i for i in self.arrivals if self.alerts[i].state in ("resolved", "false_positive")][:excess]
        for alert_id in closed:
            del self.alerts[alert_id]
        self.arrivals = [i for i in self.arrivals if i in self.alerts]
        while len(self.alerts) > MAX_ALERTS:
            del self.alerts[self.arrivals.pop(0)]
