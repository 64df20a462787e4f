"""The detection engine: pipeline results in, alert changes out.

One instance owns the baselines, the detectors and the alert book. Batches flow in through
:meth:`DetectionEngine.process` (or :meth:`feed` for raw frames); every alert raised or updated comes
back as an AlertChange for subscribers (console, store, Asgard link). Threshold changes go through
:meth:`set_detector_settings`, which takes effect on the next batch, without restart.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.detect import feedback
from heimdal_tui.detect.alert_writes import AlertWrites
from heimdal_tui.detect.alerts import Alert, AlertBook, AlertChange, AlertState, Suppression
from heimdal_tui.detect.baseline import GoldenProfile
from heimdal_tui.detect.baseline_saves import SaveTracker
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.drift import HISTORY_POINTS, DriftPoint, DriftTracker
from heimdal_tui.detect.geo import CountryLookup
from heimdal_tui.detect.harness import context_for, pipeline_empty_packets
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.learning import BaselineBook, LearningSettings
from heimdal_tui.detect.model import DetectorSettings, Finding
from heimdal_tui.detect.registry import build_detectors, register_settings
from heimdal_tui.pipeline.engine import BatchResult, Pipeline

if TYPE_CHECKING:
    from heimdal_tui.store import Store

log_errors_limit = 20
_by_time = attrgetter("ts")


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    learning: LearningSettings = field(default_factory=LearningSettings)
    correlation_window: float = 600.0
    max_alerts: int = 10_000
    detectors: dict[str, DetectorSettings] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator action: when (capture and wall time), who, what, why, and what changed."""

    ts: float
    wall_time: float
    actor: str
    action: str
    alert_id: str | None
    device: int | None
    reason: str
    detail: dict[str, Any]


@dataclass
class DetectionStats:
    """``busy_seconds``: time spent in detection (building each batch's context, the baseline
    book, drift, every detector and the alert book), as Pipeline.stats.busy_seconds is for the
    packet pipeline."""

    findings: int = 0
    busy_seconds: float = 0.0
    detector_errors: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None


class DetectionEngine:
    def __init__(
        self,
        pipeline: Pipeline,
        settings: DetectionSettings | None = None,
        intel: ThreatIntel | None = None,
        profiles: dict[str, GoldenProfile] | None = None,
        countries: CountryLookup | None = None,
    ) -> None:
        register_settings()  # the config model validates threshold changes against these
        self.pipeline = pipeline
        self.settings = settings or DetectionSettings()
        self.intel = intel or ThreatIntel()
        self.book = BaselineBook(self.settings.learning, countries, profiles)
        self.detectors = build_detectors(self.book, self.intel, dict(self.settings.detectors))
        self.alerts = AlertBook(self.settings.correlation_window, self.settings.max_alerts)
        self.stats = DetectionStats()
        self.subscribers: list[Callable[[AlertChange], None]] = []
        self.last_ended_flows = pipeline.flows.open_flows().clear()
        self.drift = DriftTracker(self.book)
        self.saves = SaveTracker()  # what the store holds of each baseline
        self.alert_writes = AlertWrites()  # the alert changes the store has yet to get
        self.drift_subscribers: list[Callable[[int, DriftPoint], None]] = []
        self.audit: deque[AuditEntry] = deque(maxlen=1000)
        self.store: Store | None = None
        self.now = 0.0

    # -- input ---------------------------------------------------------------------------------
    def feed(self, batch: FrameBatch) -> list[AlertChange]:
        return self.process(self.pipeline.feed(batch))

    def process(self, result: BatchResult) -> list[AlertChange]:
        started = time.perf_counter()
        ctx = context_for(self.pipeline, result)
        self.stats.busy_seconds += time.perf_counter() - started
        return self.process_context(ctx)

    def process_context(self, ctx: BatchContext) -> list[AlertChange]:
        started = time.perf_counter()
        self.now = max(self.now, ctx.now)
        activity = self.book.observe(ctx)
        self._publish_drift(self.drift.observe(activity, ctx.now))
        findings: list[Finding] = []
        for kind, detector in self.detectors.items():
            try:
                findings.extend(detector.observe(ctx))
            except Exception as exc:  # one broken detector must not stop the others or capture
                errors = self.stats.detector_errors
                errors[kind] = errors.get(kind, 0) + 1
                self.stats.last_error = f"{kind}: {type(exc).__name__}: {exc}"
                if errors[kind] <= log_errors_limit:
                    import logging

                    logging.getLogger(__name__).exception("detector %s failed", kind)
        changes = self._fold(findings, ctx)
        self.stats.busy_seconds += time.perf_counter() - started
        return changes

    def finish(self) -> list[AlertChange]:
        """End of input: close flows and open minutes, and run the detectors one last time."""
        ended = self.pipeline.finish()
        self.last_ended_flows = ended
        final = BatchResult(
            packets=pipeline_empty_packets(),
            app_events=[],
            new_flows=ended.clear(),
            ended_flows=ended,
            new_devices=[],
            evicted_devices=[],
        )
        ctx = context_for(self.pipeline, final)
        changes = self.process_context(ctx)
        # Minutes still open at the end are complete now.
        self.book.activity = self.book.flush_minutes()
        self._publish_drift(self.drift.observe(self.book.activity, ctx.now))
        self._publish_drift(self.drift.flush())
        findings: list[Finding] = []
        for kind in ("volume_spike", "timing_anomaly"):
            findings.extend(self.detectors[kind].observe(ctx))
        changes += self._fold(findings, ctx)
        self.write_alerts()
        return changes

    def _publish_drift(self, points: list[tuple[int, DriftPoint]]) -> None:
        if not points:
            return
        if self.store is not None:
            self.store.add_drifts((device, p.ts, p.score, p.features) for device, p in points)
        for device, point in points:
            for subscriber in self.drift_subscribers:
                subscriber(device, point)

    def _fold(self, findings: list[Finding], ctx: BatchContext) -> list[AlertChange]:
        self.stats.findings += len(findings)
        changes = []
        add, device_ref = self.alerts.add, ctx.device_ref
        for finding in sorted(findings, key=_by_time):
            change = add(finding, device_ref(finding.device))
            if change is not None:
                changes.append(change)
                self._publish(change)
        self.alerts.settle(ctx.now)
        if self.store is not None:
            self._write_alerts(*self.alert_writes.due(ctx.now))
        return changes

    def _publish(self, change: AlertChange) -> None:
        if self.store is not None:
            self.alert_writes.add(change.alert, change.new)
        for subscriber in self.subscribers:
            subscriber(change)

    def write_alerts(self) -> int:
        """Hand the store every alert change it has yet to get (alert_writes: batches write new
        alerts within a second of capture time and refreshes within a minute); how many. Operator
        actions, the end of input and the sensor stopping call it."""
        return self._write_alerts(*self.alert_writes.take_all())

    def _write_alerts(self, new: list[Alert], refreshed: list[Alert]) -> int:
        if self.store is None or not (new or refreshed):
            return 0
        from heimdal_tui.store import alert_record

        records = [alert_record(alert) for alert in new]
        for alert in refreshed:
            record = alert_record(alert)
            record.pop("state")  # the operator's state in the store wins
            records.append(record)
        return self.store.upsert_alerts(records)

    # -- store ---------------------------------------------------------------------------------
    def attach_store(self, store: Store) -> None:
        """Persist alerts, triage, baselines and drift in ``store``; restore its suppressions, its
        allowlist and each device's drift history."""
        self.store = store
        self.drift.restore(store.drift_histories(HISTORY_POINTS))
        for rule in store.suppressions():
            self.alerts.suppress(
                Suppression(
                    until=rule["until"],
                    device=rule.get("device_key"),
                    kind=rule.get("kind"),
                    peer=rule.get("peer"),
                    reason=rule.get("reason") or "",
                )
            )
        for entry in store.allowlist():
            self.alerts.allowlist.add((entry.get("device_key"), entry["kind"], entry["value"] or None))

    def load_baselines(self, store: Store) -> int:
        """Take the baselines ``store`` holds (they count as mature); how many."""
        saved = store.all_baselines()
        if saved:
            self.book.load_dict(
                {
                    "format": "heimdal-baselines",
                    "devices": [dict(data, device=key) for key, data in saved.items()],
                }
            )
            baselines = self.book.baselines
            self.saves.mark_saved(baselines[key] for key in saved if key in baselines)
        return len(saved)

    def save_baselines(self, *, final: bool = False) -> int:
        """Write the baselines that changed since the store last got them (baseline_saves); with
        ``final`` (the sensor stopping) also those whose only change is ``last_seen``. How many."""
        if self.store is None:
            return 0
        return self.saves.save(self.book.baselines, self.store.save_baselines, final=final)

    # -- triage ----------------------------------------------------------------------------------
    def record(
        self, action: str, actor: str, reason: str, alert: Alert | None, detail: dict[str, Any]
    ) -> None:
        self.write_alerts()  # what the operator acts on is in the store before the action is
        entry = AuditEntry(
            ts=self.now,
            wall_time=time.time(),
            actor=actor,
            action=action,
            alert_id=alert.id if alert else None,
            device=alert.device.key if alert else detail.get("device"),
            reason=reason,
            detail=detail,
        )
        self.audit.append(entry)
        if self.store is not None and action not in ("acknowledge", "resolve", "false_positive"):
            self.store.add_audit(
                actor,
                action,
                ts=self.now,
                alert_id=entry.alert_id,
                device_key=entry.device,
                detail={"reason": reason, **detail},
                wall_time=entry.wall_time,
            )

    def _set_state(
        self, alert_id: str, state: AlertState, actor: str, reason: str, detail: dict[str, Any]
    ) -> Alert:
        if alert_id not in self.alerts.alerts:
            raise KeyError(f"no alert {alert_id!r}")
        alert = self.alerts.set_state(alert_id, state)
        action = {
            AlertState.ACKNOWLEDGED: "acknowledge",
            AlertState.RESOLVED: "resolve",
            AlertState.FALSE_POSITIVE: "false_positive",
            AlertState.OPEN: "reopen",
        }[state]
        self.record(action, actor, reason, alert, detail)
        if self.store is not None:
            if self.store.alert(alert_id) is None:
                from heimdal_tui.store import alert_record

                self.store.upsert_alert(alert_record(alert))
            self.store.set_alert_state(alert_id, state.value, actor=actor, reason=reason, ts=self.now)
        self._publish(AlertChange(alert, new=False))
        return alert

    def acknowledge(self, alert_id: str, actor: str = "operator", reason: str = "") -> Alert:
        return self._set_state(alert_id, AlertState.ACKNOWLEDGED, actor, reason, {})

    def resolve(self, alert_id: str, actor: str = "operator", reason: str = "") -> Alert:
        return self._set_state(alert_id, AlertState.RESOLVED, actor, reason, {})

    def reopen(self, alert_id: str, actor: str = "operator", reason: str = "") -> Alert:
        return self._set_state(alert_id, AlertState.OPEN, actor, reason, {})

    def mark_false_positive(self, alert_id: str, reason: str, actor: str = "operator") -> Alert:
        """Close the alert as a false positive and teach the engine: the behaviour joins the
        device's baseline (behaviour alerts) or the allowlist (the others). The audit trail records
        what changed and why."""
        if not reason.strip():
            raise ValueError("a false positive needs a reason (it goes into the audit trail)")
        alert = self.alerts.alerts.get(alert_id)
        if alert is None:
            raise KeyError(f"no alert {alert_id!r}")
        learned = feedback.learn_from_false_positive(self, alert)
        return self._set_state(alert_id, AlertState.FALSE_POSITIVE, actor, reason, {"learned": learned})

    def snooze(self, alert_id: str, seconds: float, reason: str = "", actor: str = "operator") -> Suppression:
        """Silence this alert's (device, kind, peer) for ``seconds`` of capture time."""
        alert = self.alerts.alerts.get(alert_id)
        if alert is None:
            raise KeyError(f"no alert {alert_id!r}")
        if seconds <= 0:
            raise ValueError("a snooze needs a positive duration")
        rule = Suppression(
            until=self.now + seconds, device=alert.device.key, kind=alert.kind, peer=alert.peer, reason=reason
        )
        self.alerts.suppress(rule)
        if self.store is not None:
            self.store.add_suppression(
                rule.until,
                device_key=rule.device,
                kind=rule.kind,
                peer=rule.peer,
                reason=reason,
                created=self.now,
            )
        self.record("snooze", actor, reason, alert, {"until": rule.until, "seconds": seconds})
        return rule

    def accept_drift(self, device: int, reason: str = "", actor: str = "operator") -> dict[str, list[str]]:
        """Merge the device's pending novel behaviour into its baseline."""
        merged = self.drift.accept(device)
        summary = {
            table: [i.value for i in getattr(merged, table)]
            for table in ("destinations", "services", "protocols", "countries")
        }
        summary["minutes"] = [str(len(merged.minutes))]
        self.record("accept_drift", actor, reason, None, {"device": device, "merged": summary})
        self.save_baselines()
        return summary

    def apply_setting(self, kind: str, key: str, value: Any) -> DetectorSettings:
        """Change one detector setting, validated like the config file; applies on the next batch."""
        from heimdal_tui.config import ConfigError
        from heimdal_tui.config.model import Config
        from heimdal_tui.config.validation import with_detector_setting

        detector = self.detectors.get(kind)
        if detector is None:
            raise KeyError(f"no detector {kind!r}")
        config = Config(detectors={k: d.settings for k, d in self.detectors.items()})
        try:
            updated = with_detector_setting(config, kind, key, value)
        except ConfigError:
            raise
        settings = updated.detectors[kind]
        self.set_detector_settings(kind, settings)
        self.record("set_threshold", "operator", "", None, {"detector": kind, "key": key, "value": value})
        return settings

    # -- commands --------------------------------------------------------------------------------
    def set_detector_settings(self, kind: str, settings: DetectorSettings) -> None:
        """Apply new settings to one detector; they take effect on the next batch."""
        detector = self.detectors[kind]
        if not isinstance(settings, detector.settings_type):
            raise TypeError(f"{kind} takes {detector.settings_type.__name__}, not {type(settings).__name__}")
        detector.settings = settings

    def detector_settings(self) -> dict[str, Any]:
        return {kind: d.settings for kind, d in self.detectors.items()}
