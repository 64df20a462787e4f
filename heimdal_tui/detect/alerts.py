"""Alerts: findings folded together, with a lifecycle the operator drives.

Repeats of the same (device, kind, peer) within the correlation window fold into one alert whose
count, last_seen, severity (the highest seen) and evidence (the newest) are updated, so one cause
never floods the operator. Suppression rules (snoozes) silence matching findings until they expire.
Times are capture time: in live capture that is the wall clock; in a replay, the replay's clock.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.evidence import pack_evidence, plain_evidence
from heimdal_tui.detect.model import Finding, Severity


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


ACTIVE_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    kind: str
    severity: Severity
    score: float
    ts: float
    device: DeviceRef
    peer: str | None
    first_seen: float
    last_seen: float
    count: int
    summary: str
    evidence: Mapping[str, Any]  # a dict, packed once the alert is settled (see AlertBook.settle)
    state: AlertState = AlertState.OPEN

    def to_dict(self) -> dict[str, Any]:
        """The alert as the JSON documented in the README (alerts on stdout, the store, the API)."""
        from heimdal_tui.devices.snapshot import iso

        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity.value,
            "score": round(self.score, 1),
            "ts": iso(self.ts),
            "device": {
                "id": self.device.key,
                "mac": self.device.mac,
                "ip": self.device.ip,
                "name": self.device.name,
                "type": self.device.type,
            },
            "peer": self.peer,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "count": self.count,
            "state": self.state.value,
            "summary": self.summary,
            "evidence": plain_evidence(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class Suppression:
    """Silences findings matching every non-None field until ``until`` (capture time)."""

    until: float
    device: int | None = None
    kind: str | None = None
    peer: str | None = None
    reason: str = ""

    def matches(self, finding: Finding, now: float) -> bool:
        return (
            now < self.until
            and (self.device is None or self.device == finding.device)
            and (self.kind is None or self.kind == finding.kind)
            and (self.peer is None or self.peer == finding.peer)
        )


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert was raised (``new``) or updated; the console and the store subscribe to these."""

    alert: Alert
    new: bool


def alert_id(kind: str, device: int, peer: str | None, first_seen: float) -> str:
    digest = hashlib.sha1(f"{kind}|{device}|{peer}|{first_seen:.6f}".encode()).hexdigest()
    return digest[:12]


@dataclass
class AlertBook:
    correlation_window: float = 600.0
    max_alerts: int = 10_000
    alerts: OrderedDict[str, Alert] = field(default_factory=OrderedDict)
    suppressions: list[Suppression] = field(default_factory=list)
    suppressed: int = 0
    # (device, kind, peer) the operator declared benign (false positives); None matches anything.
    allowlist: set[tuple[int | None, str, str | None]] = field(default_factory=set)
    _active: dict[tuple[int, str, str | None], str] = field(default_factory=dict)
    _settled_at: float = float("-inf")

    def allowed(self, finding: Finding) -> bool:
        allow = self.allowlist
        return bool(allow) and any(
            key in allow
            for key in (
                (finding.device, finding.kind, finding.peer),
                (finding.device, finding.kind, None),
                (None, finding.kind, finding.peer),
            )
        )

    def add(self, finding: Finding, device: DeviceRef) -> AlertChange | None:
        """Fold ``finding`` in; None when a suppression rule or the allowlist silenced it."""
        # Most books have no rule and an empty allowlist: asking them costs more than the fold.
        if (self.suppressions and any(rule.matches(finding, finding.ts) for rule in self.suppressions)) or (
            self.allowlist and self.allowed(finding)
        ):
            self.suppressed += 1
            return None
        key = (finding.device, finding.kind, finding.peer)
        current_id = self._active.get(key)
        current = self.alerts.get(current_id) if current_id else None
        if (
            current is not None
            and current.state in ACTIVE_STATES
            and finding.ts - current.last_seen <= self.correlation_window
        ):
            severity = current.severity
            if finding.severity.rank > severity.rank:
                severity = finding.severity
            # Made directly: dataclasses.replace costs several times more, and repeats are most
            # of the findings of a long capture.
            updated = Alert(
                id=current.id,
                kind=current.kind,
                severity=severity,
                score=max(current.score, finding.score),
                ts=current.ts,
                device=device,
                peer=current.peer,
                first_seen=current.first_seen,
                last_seen=max(current.last_seen, finding.ts),
                count=current.count + 1,
                summary=finding.summary,
                evidence=finding.evidence,
                state=current.state,
            )
            self.alerts[updated.id] = updated
            return AlertChange(updated, new=False)
        alert = Alert(
            id=alert_id(finding.kind, finding.device, finding.peer, finding.ts),
            kind=finding.kind,
            severity=finding.severity,
            score=finding.score,
            ts=finding.ts,
            device=device,
            peer=finding.peer,
            first_seen=finding.ts,
            last_seen=finding.ts,
            count=1,
            summary=finding.summary,
            evidence=finding.evidence,
        )
        self.alerts[alert.id] = alert
        if current is not None:
            self._pack(current.id)  # its key now folds into the new alert: it is settled
        self._active[key] = alert.id
        self._trim()
        return AlertChange(alert, new=True)

    def set_state(self, alert_id: str, state: AlertState) -> Alert:
        alert = self.alerts[alert_id]
        updated = replace(alert, state=state)
        self.alerts[alert_id] = updated
        return updated

    def suppress(self, rule: Suppression) -> None:
        self.suppressions.append(rule)

    def expire_suppressions(self, now: float) -> None:
        self.suppressions = [rule for rule in self.suppressions if rule.until > now]

    def settle(self, now: float) -> None:
        """Settle the alerts no finding can fold into any more: last seen more than two
        correlation windows and a minute before ``now`` (capture time; findings lag their batch by
        seconds, a completed minute's by one minute). Their fold keys go (a sensor raises thousands
        of alerts a day, each key ~150 bytes) and their evidence is packed (see
        :mod:`heimdal_tui.detect.evidence`); the alerts stay. Runs at most every half window: call
        it after every batch."""
        window = self.correlation_window
        if now - self._settled_at < max(window / 2, 30.0):
            return
        self._settled_at = now
        horizon = now - 2 * window - 60.0
        alerts = self.alerts
        stale = [
            key
            for key, alert_id in self._active.items()
            if (alert := alerts.get(alert_id)) is None or alert.last_seen < horizon
        ]
        for key in stale:
            self._pack(self._active.pop(key))

    def _pack(self, alert_id: str) -> None:
        alert = self.alerts.get(alert_id)
        if alert is not None:
            packed = pack_evidence(alert.evidence)
            if packed is not alert.evidence:
                self.alerts[alert_id] = replace(alert, evidence=packed)

    def _trim(self) -> None:
        """Past the cap, forget the oldest closed alerts first, then the oldest of all."""
        excess = len(self.alerts) - self.max_alerts
        if excess <= 0:
            return
        closed = [a for a in self.alerts.values() if a.state not in ACTIVE_STATES][:excess]
        for alert in closed:
            self._forget(alert)
        while len(self.alerts) > self.max_alerts:
            self._forget(next(iter(self.alerts.values())))

    def _forget(self, alert: Alert) -> None:
        """Drop ``alert`` and the fold key pointing at it (a sensor runs for months: keys of alerts
        no longer held must not pile up)."""
        del self.alerts[alert.id]
        key = (alert.device.key, alert.kind, alert.peer)
        if self._active.get(key) == alert.id:
            del self._active[key]
