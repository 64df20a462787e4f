"""Retention: age limits for what the store no longer needs, a size cap, and the background thread
that applies them without getting in capture's way.

Age limits (``[retention]`` in the configuration; defaults in :class:`RetentionConfig`): closed
alerts (resolved, false positive) and drift history by capture time, the audit trail and delivered
Asgard items by wall-clock time. Past the size cap, the oldest closed data goes first, in this order:
delivered Asgard items, closed alerts, drift history, audit rows; open and acknowledged alerts,
baselines, suppressions, the allowlist and undelivered items are never pruned. Then freed pages go
back to the file system (incremental vacuum, stores created by this version) and the write-ahead
log is truncated.

Every delete is a short transaction of a few hundred rows (heimdal_tui.store.maintenance); capture
itself never touches the store, and the engine's writes interleave with a long prune.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from heimdal_tui.config.model import RetentionConfig
from heimdal_tui.store import Store
from heimdal_tui.store.base import StoreError

log = logging.getLogger("heimdal_tui.service.retention")

_DAY = 86_400.0
_MIB = 1024 * 1024
# Pause between two delete batches: lets the engine's writes in between.
_BATCH_PAUSE = 0.01
# A size-cap pass gives up after this many batches (the rest waits for the next run).
_MAX_BATCHES = 10_000


class DeliveredPruner(Protocol):
    def prune_delivered(self, older_than: float) -> int: ...


@dataclass(slots=True)
class RetentionReport:
    """What one run did. ``deleted`` counts rows by kind; ``skipped`` says why nothing was done."""

    deleted: dict[str, int] = field(default_factory=dict)
    used_before: int = 0
    used_after: int = 0
    on_disk_after: int = 0
    vacuumed_pages: int = 0
    over_cap: bool = False
    skipped: str | None = None

    def add(self, kind: str, count: int) -> None:
        if count:
            self.deleted[kind] = self.deleted.get(kind, 0) + count

    def describe(self) -> str:
        if self.skipped:
            return f"retention skipped: {self.skipped}"
        gone = ", ".join(f"{n} {kind}" for kind, n in self.deleted.items()) or "nothing"
        text = (
            f"retention deleted {gone}; store {self.used_after / _MIB:.1f} MiB used, "
            f"{self.on_disk_after / _MIB:.1f} MiB on disk"
        )
        if self.over_cap:
            text += " (still over the size cap: the rest is open alerts, baselines and settings)"
        return text


def _delivered_pruner(store: Store, sync_queue: object | None) -> Callable[[float], int] | None:
    for candidate in (sync_queue, store):
        method = getattr(candidate, "prune_delivered", None)
        if callable(method):
            return method
    return None


class Retention:
    """The policy applied to one store. ``capture_clock`` gives the capture time of now (the wall
    clock live; the capture's clock in a replay), ``wall_clock`` the wall time."""

    def __init__(
        self,
        store: Store,
        policy: RetentionConfig,
        *,
        sync_queue: DeliveredPruner | None = None,
        capture_clock: Callable[[], float] = time.time,
        wall_clock: Callable[[], float] = time.time,
        pause: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.store = store
        self.policy = policy
        self.capture_clock = capture_clock
        self.wall_clock = wall_clock
        self._prune_delivered = _delivered_pruner(store, sync_queue)
        self._pause = pause

    def run(self) -> RetentionReport:
        """Apply the age limits, then the size cap, then give space back. Never raises for a store
        problem: a degraded store is skipped (writes are what it lacks), errors are logged."""
        report = RetentionReport()
        if self.store.degraded:
            report.skipped = self.store.status().describe()
            return report
        try:
            report.used_before = self.store.size().used
            self._by_age(report)
            self._by_size(report)
            report.vacuumed_pages = self._give_back()
            self.store.checkpoint()
            size = self.store.size()
            report.used_after, report.on_disk_after = size.used, size.on_disk
            report.over_cap = size.used > self.cap
        except StoreError as exc:  # degraded or closed meanwhile: try again next run
            report.skipped = str(exc)
        return report

    @property
    def cap(self) -> int:
        return int(self.policy.max_store_mb * _MIB)

    def _drain(self, prune: Callable[[], int], kind: str, report: RetentionReport) -> None:
        """Run one batch delete until it deletes nothing."""
        for _ in range(_MAX_BATCHES):
            count = prune()
            report.add(kind, count)
            if count == 0:
                return
            self._pause(_BATCH_PAUSE)

    def _by_age(self, report: RetentionReport) -> None:
        capture_now, wall_now = self.capture_clock(), self.wall_clock()
        policy = self.policy
        closed_before = capture_now - policy.closed_alert_days * _DAY
        drift_before = capture_now - policy.drift_days * _DAY
        audit_before = wall_now - policy.audit_days * _DAY
        self._drain(lambda: self.store.prune_closed_alerts(closed_before), "closed alerts", report)
        self._drain(lambda: self.store.prune_drift_before(drift_before), "drift points", report)
        self._drain(lambda: self.store.prune_audit_before(audit_before), "audit rows", report)
        if self._prune_delivered is not None:
            pruned = self._prune_delivered(wall_now - policy.delivered_sync_days * _DAY)
            report.add("delivered sync items", int(pruned or 0))

    def _by_size(self, report: RetentionReport) -> None:
        steps: list[tuple[str, Callable[[], int]]] = []
        if self._prune_delivered is not None:
            prune_delivered = self._prune_delivered
            wall_now = self.wall_clock()
            steps.append(("delivered sync items", lambda: int(prune_delivered(wall_now) or 0)))
        steps += [
            ("closed alerts", lambda: self.store.prune_closed_alerts(None)),
            ("drift points", lambda: self.store.prune_drift_before(None)),
            ("audit rows", lambda: self.store.prune_audit_before(None)),
        ]
        batches = 0
        for kind, prune in steps:
            while self.store.size().used > self.cap and batches < _MAX_BATCHES:
                count = prune()
                batches += 1
                report.add(kind, count)
                if count == 0:
                    break
                self._pause(_BATCH_PAUSE)
        if self.store.size().used > self.cap:
            log.warning(
                "the store is over its %.0f MiB cap with nothing closed left to prune",
                self.policy.max_store_mb,
                extra={"store": str(self.store.path), "used_bytes": self.store.size().used},
            )

    def _give_back(self) -> int:
        total = 0
        for _ in range(_MAX_BATCHES):
            given = self.store.incremental_vacuum(256)
            total += given
            if given == 0:
                break
            self._pause(_BATCH_PAUSE)
        return total


class RetentionWorker:
    """Runs :class:`Retention` in a background thread: once at start, then every
    ``policy.interval`` seconds. :meth:`stop` returns within a batch."""

    def __init__(
        self,
        store: Store,
        policy: RetentionConfig,
        *,
        sync_queue: DeliveredPruner | None = None,
        capture_clock: Callable[[], float] = time.time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._stop = threading.Event()
        self.retention = Retention(
            store,
            policy,
            sync_queue=sync_queue,
            capture_clock=capture_clock,
            wall_clock=wall_clock,
            pause=self._stop.wait,
        )
        self.runs = 0
        self.last_report: RetentionReport | None = None
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._ran = threading.Condition()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="heimdal-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_for_run(self, runs: int = 1, timeout: float = 30.0) -> bool:
        """Block until at least ``runs`` runs finished (tests, and a daemon that wants the first)."""
        with self._ran:
            return self._ran.wait_for(lambda: self.runs >= runs, timeout)

    def update_policy(self, policy: RetentionConfig) -> None:
        """A reloaded configuration: used from the next run on."""
        self.retention.policy = policy

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.retention.run()
                self.last_report, self.last_error = report, None
                if report.deleted or report.vacuumed_pages:
                    log.info(report.describe(), extra={"deleted": report.deleted})
            except Exception as exc:  # the thread must outlive a bad run
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("retention run failed")
            with self._ran:
                self.runs += 1
                self._ran.notify_all()
            if self._stop.wait(self.retention.policy.interval):
                return
