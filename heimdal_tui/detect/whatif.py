"""What-if: how many alerts a detector would have raised over recent traffic with other settings.

The engine keeps the recent batches it saw (:class:`RecentHistory`, bounded by memory and capture
time). :func:`what_if` runs a fresh instance of one detector over them twice, with the settings in
force and with the proposed ones, and folds each run's findings into alerts exactly as the engine
does (same correlation window), so the two counts compare like with like.

Behaviour detectors compare with the baselines as they are *now* (a baseline's past states are not
kept); for those the figures are an estimate, and the result says so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heimdal_tui.detect.activity import ROW_BYTES, BatchActivity
from heimdal_tui.detect.alerts import AlertBook
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.learning import Activity, BaselineBook
from heimdal_tui.detect.model import DetectorSettings, Finding
from heimdal_tui.detect.registry import detector_classes

# ~210 bytes per packet: about 40,000 packets, 20 s of a 1,000-device LAN at 2,000 packets/s
# (an hour of a quiet home LAN). Bigger would not fit the daemon's 200 MB budget on a Pi.
DEFAULT_HISTORY_BYTES = 8 * 1024 * 1024
DEFAULT_HISTORY_SECONDS = 3600.0
# Python bytes of one kept application message (its AppEvent and parsed result), measured.
APP_EVENT_BYTES = 650


@dataclass(frozen=True, slots=True)
class _Step:
    ctx: BatchContext
    activity: Mapping[int, Activity]
    nbytes: int


class RecentHistory:
    """The most recent batches (context and per-device activity), oldest dropped first, within
    ``max_bytes`` (packet and flow columns, application messages and behaviour rows, estimated)
    and ``max_seconds`` of capture time."""

    def __init__(self, max_bytes: int = DEFAULT_HISTORY_BYTES, max_seconds: float = DEFAULT_HISTORY_SECONDS):
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._steps: deque[_Step] = deque()
        self.nbytes = 0

    def add(self, ctx: BatchContext, activity: Mapping[int, Activity]) -> None:
        if isinstance(activity, BatchActivity):
            activity = activity.without_drift_rows()  # detectors re-run without drift's rows
            activity_bytes = activity.estimated_size()
        else:
            activity_bytes = ROW_BYTES * len(activity)
        nbytes = int(
            ctx.packets.estimated_size()
            + ctx.new_flows.estimated_size()
            + ctx.ended_flows.estimated_size()
            + APP_EVENT_BYTES * len(ctx.app_events)
            + activity_bytes
        )
        release = getattr(ctx.device_ref, "release", None)  # harness.BatchDeviceRefs
        if release is not None:
            # The batch's ranking of every device's addresses is not kept with it: 60 small
            # batches (15 s at a live pace) held ~9 MB of them beyond the history's budget.
            release()
        self._steps.append(_Step(ctx, activity, nbytes))
        self.nbytes += nbytes
        # The newest batch always stays, however big: a what-if over nothing would say nothing.
        while len(self._steps) > 1 and (
            self.nbytes > self.max_bytes or ctx.now - self._steps[0].ctx.now > self.max_seconds
        ):
            self.nbytes -= self._steps.popleft().nbytes

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def span(self) -> tuple[float, float] | None:
        """Capture time covered: (first batch's first packet, last batch's last)."""
        if not self._steps:
            return None
        return self._steps[0].ctx.first_ts, self._steps[-1].ctx.now

    def steps(self) -> list[_Step]:
        return list(self._steps)


class _BookAsOf:
    """The live baseline book, but with one recorded batch's activity: what a behaviour detector
    reads (``activity``) is from then, the baselines are today's."""

    def __init__(self, book: BaselineBook) -> None:
        self._book = book
        self.activity: Mapping[int, Activity] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._book, name)


def _replay(
    kind: str,
    settings: DetectorSettings,
    history: RecentHistory,
    book: BaselineBook,
    intel: Any,
    window: float,
) -> int:
    cls = detector_classes()[kind]
    proxy = _BookAsOf(book)
    if getattr(cls, "needs_baseline", False):
        detector = cls(proxy, settings)
    elif kind == "threat_intel":
        detector = cls(settings, intel)
    else:
        detector = cls(settings)
    alerts = AlertBook(correlation_window=window, max_alerts=1_000_000)
    for step in history.steps():
        proxy.activity = step.activity
        findings: list[Finding] = detector.observe(step.ctx)
        for finding in sorted(findings, key=lambda f: f.ts):
            alerts.add(finding, step.ctx.device_ref(finding.device))
    return len(alerts.alerts)


def what_if(
    kind: str,
    current: DetectorSettings,
    proposed: DetectorSettings,
    history: RecentHistory,
    book: BaselineBook,
    intel: Any,
    correlation_window: float,
) -> dict[str, Any]:
    """Alerts ``kind`` would have raised over ``history`` with ``current`` and ``proposed`` settings."""
    span = history.span
    cls = detector_classes()[kind]
    return {
        "kind": kind,
        "current": _replay(kind, current, history, book, intel, correlation_window) if current.enabled else 0,
        "proposed": _replay(kind, proposed, history, book, intel, correlation_window)
        if proposed.enabled
        else 0,
        "batches": len(history),
        "from": span[0] if span else None,
        "to": span[1] if span else None,
        "estimate": bool(getattr(cls, "needs_baseline", False)),
    }
