"""SensorSession: the engine at work in a thread of its own, behind the SensorLink interface.

One "heimdal-sensor" thread owns the pipeline, the detection engine and the store: it drains the
capture worker's buffer in gulps, feeds them through, runs queued commands between gulps, and
publishes coalesced events to subscribers. Nothing else touches engine state, so no engine object
needs a lock; other threads only enqueue commands and receive immutable events.

The session keeps running after a replay ends (the operator goes on triaging); ``stop()`` ends it,
saving baselines to the store on the way out.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.replay import ReplaySource
from heimdal_tui.capture.source import FrameSource
from heimdal_tui.capture.worker import BatchBuffer, CaptureWorker, PacketRate
from heimdal_tui.common.memory import MemoryReleaser
from heimdal_tui.config import Config
from heimdal_tui.detect.alerts import ACTIVE_STATES, AlertChange
from heimdal_tui.detect.engine import DetectionEngine
from heimdal_tui.detect.harness import context_for
from heimdal_tui.detect.whatif import DEFAULT_HISTORY_BYTES, RecentHistory
from heimdal_tui.devices.snapshot import snapshot
from heimdal_tui.sensor import views
from heimdal_tui.sensor.commands import Commands
from heimdal_tui.sensor.events import (
    SEVERITY_ORDER,
    AlertsEvent,
    DevicesEvent,
    DriftEvent,
    NoticeEvent,
    ReplayState,
    SensorEvent,
    SensorStatus,
    StatusEvent,
    SyncEvent,
)
from heimdal_tui.sensor.link import CommandError, EventCallback

log = logging.getLogger(__name__)

LABELS_KEY = "device_labels"
UI_HOLD = 0.2  # seconds the pipeline pauses after a keypress
UI_HOLD_MAX = 0.5


@dataclass(frozen=True, slots=True)
class SessionOptions:
    status_interval: float = 0.25  # seconds between StatusEvents
    devices_interval: float = 1.0  # seconds between DevicesEvents / DriftEvents
    sync_interval: float = 1.0
    save_interval: float = 60.0  # seconds between baseline saves to the store
    # Frames per pipeline batch: large enough to keep per-batch overhead low at full speed, small
    # enough that commands (a keypress in the console) wait a fraction of a second at most.
    gulp_frames: int = 16_384
    pps_history: int = 120
    history_bytes: int = DEFAULT_HISTORY_BYTES  # recent batches kept for the thresholds what-if
    command_timeout: float = 10.0
    # Share of wall time the pipeline may keep the interpreter busy while a replay is backlogged
    # (1.0: all of it). The console uses less: a full-speed replay then leaves the GIL free often
    # enough for keys to be answered at once. Live capture is never held back (frames would drop).
    busy_share: float = 1.0
    # Seconds the sensor lets frames gather before feeding them on, unless a whole gulp is waiting:
    # each batch costs a fixed few milliseconds (polars and numpy calls per table and detector), so
    # a paced replay or live capture at a few thousand packets/s fed in 50 ms batches spends most
    # of a core on overhead. Adds at most this much to an alert's latency (the bar is 1 s).
    min_batch_interval: float = 0.25


@dataclass
class _Subscriber:
    callback: EventCallback
    active: bool = True


@dataclass
class _Pending:
    alerts: dict[str, AlertChange] = field(default_factory=dict)
    devices_dirty: bool = True
    drift_dirty: bool = True


class SensorSession:
    """Runs ``source`` through ``engine`` (optionally persisting to ``store`` and syncing through
    ``sync``) and serves the SensorLink interface."""

    def __init__(
        self,
        source: FrameSource,
        engine: DetectionEngine,
        *,
        store: Any = None,
        sync: Any = None,
        config: Config | None = None,
        config_path: Path | None = None,
        options: SessionOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        buffer: BatchBuffer | None = None,
    ) -> None:
        self.source = source
        self.engine = engine
        self.store = store
        self.sync = sync
        self.config = config or Config()
        self.config_path = config_path
        self.options = options or SessionOptions()
        self.clock = clock
        self.worker = CaptureWorker(source, buffer)
        self.history = RecentHistory(max_bytes=self.options.history_bytes)
        self._memory = MemoryReleaser()  # a sensor runs for months: hand freed heap back
        self.commands = Commands(self)
        self.labels: dict[int, str] = {}
        if store is not None:
            if engine.store is None:
                engine.attach_store(store)
            saved = store.kv_get(LABELS_KEY, {}) or {}
            self.labels = {int(k): str(v) for k, v in saved.items()}
        self.startup_notices: list[tuple[str, str]] = []  # (level, text) told to every subscriber
        self.state = "starting"
        self.error: str | None = None
        self.finished = threading.Event()  # the source has ended (or failed)
        self.stopped = threading.Event()
        self._stop = threading.Event()
        self._commands: queue.Queue[tuple[str, dict[str, Any], Future[Any]]] = queue.Queue()
        self._subscribers: list[_Subscriber] = []
        self._subscribers_lock = threading.Lock()
        self._pending = _Pending()
        self._rate = PacketRate()
        self._pps: deque[float] = deque(maxlen=self.options.pps_history)
        self._next_pps_sample = clock() + 1.0  # one sample per second of the clock
        self._last_frames = 0
        self._next_status = 0.0
        self._next_devices = 0.0
        self._next_sync = 0.0
        self._next_save = 0.0
        self._next_device_sync = 0.0
        self._ui_hold_until = 0.0
        self._last_feed = 0.0
        self._last_status: SensorStatus | None = None
        self.alert_counts: dict[tuple[str, str, str], int] = {}  # (kind, severity, state) -> alerts
        self._thread = threading.Thread(target=self._run, name="heimdal-sensor", daemon=True)
        engine.subscribers.append(self._on_alert)
        engine.drift_subscribers.append(lambda _device, _point: self._mark_drift())

    # -- SensorLink ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        subscriber = _Subscriber(callback)
        with self._subscribers_lock:
            self._subscribers.append(subscriber)
        # The newcomer's first events are the whole current state, built on the sensor's thread.
        self._enqueue("_welcome", {"subscriber": subscriber})

        def unsubscribe() -> None:
            subscriber.active = False
            with self._subscribers_lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def call(self, command: str, **args: Any) -> Any:
        if command.startswith("_"):
            raise CommandError(f"unknown command {command!r}")
        if threading.current_thread() is self._thread:
            return self._execute(command, args)
        future = self._enqueue(command, args)
        try:
            return future.result(timeout=self.options.command_timeout)
        except TimeoutError:
            raise CommandError(
                f"{command}: the sensor did not answer within {self.options.command_timeout:g} s"
            ) from None

    def close(self) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capture and the sensor thread; baselines are saved on the way out."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif not self.stopped.is_set():
            self.worker.stop()
            self.stopped.set()

    def yield_to_ui(self, seconds: float = UI_HOLD) -> None:
        """The operator pressed a key: hold the pipeline for a moment so the console has the
        interpreter to itself while it answers (a replay at full speed otherwise competes with it
        for the GIL). Commands still run; capture goes on into the buffer."""
        self._ui_hold_until = max(self._ui_hold_until, time.monotonic() + min(seconds, UI_HOLD_MAX))

    # -- what the session knows --------------------------------------------------------------------
    @property
    def replay_source(self) -> ReplaySource | None:
        return self.source if isinstance(self.source, ReplaySource) else None

    def set_label(self, key: int, label: str | None) -> None:
        if label:
            self.labels[key] = label
        else:
            self.labels.pop(key, None)
        if self.store is not None:
            self.store.kv_set(LABELS_KEY, {str(k): v for k, v in self.labels.items()})
        self._pending.devices_dirty = True
        self._pending.drift_dirty = True

    def save_baselines(self, *, final: bool = False) -> int:
        """Write the baselines the store does not hold as they are (engine.save_baselines); how
        many were written."""
        return self.engine.save_baselines(final=final)

    def publish_sync(self) -> None:
        self._next_sync = 0.0

    def status(self) -> SensorStatus:
        """The current status (built on the sensor's thread; from elsewhere, the last one built)."""
        if threading.current_thread() is self._thread or self._last_status is None:
            return self._build_status(self.clock())
        return self._last_status

    # -- the sensor thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        buffer = self.worker.buffer
        try:
            self.worker.start()
            self.state = "running"
            while not self._stop.is_set():
                if time.monotonic() < self._ui_hold_until:
                    # The operator is typing: leave the interpreter to the console for a moment.
                    self._run_commands(block=False)
                    time.sleep(0.01)
                elif not self.finished.is_set():
                    self._run_commands(block=False)
                    wait = self._last_feed + self.options.min_batch_interval - time.monotonic()
                    if wait > 0 and buffer.depth_frames < self.options.gulp_frames and not buffer.closed:
                        time.sleep(min(wait, 0.02))  # let a bigger batch gather (commands still run)
                        self._tick(self.clock())
                        continue
                    batch = buffer.get_all(self.options.gulp_frames, timeout=0.05)
                    self._last_feed = time.monotonic()
                    if batch is not None and len(batch):
                        self._feed(batch)
                    elif buffer.drained():
                        self._source_ended()
                else:
                    self._run_commands(block=True)
                self._tick(self.clock())
        except Exception as exc:  # the sensor must say what stopped it, not vanish
            log.exception("sensor thread failed")
            self.state = "failed"
            self.error = f"the sensor stopped on an unexpected error: {type(exc).__name__}: {exc}"
            self._emit(NoticeEvent("error", self.error))
            self._emit(StatusEvent(self._build_status(self.clock())))
        finally:
            self.worker.stop()
            self._fail_queued_commands()
            try:
                self.engine.write_alerts()
            except Exception:
                log.exception("writing alerts at exit failed")
            try:
                self.save_baselines(final=True)
            except Exception:
                log.exception("saving baselines at exit failed")
            if self.state not in ("failed",):
                self.state = "stopped"
            self.stopped.set()

    def _feed(self, batch: FrameBatch) -> None:
        step = self.options.gulp_frames
        throttle = self.options.busy_share < 1.0 and not getattr(self.source, "live", False)
        for start in range(0, len(batch), step):
            piece = batch.slice(start, start + step) if len(batch) > step else batch
            started = time.monotonic()
            self._feed_piece(piece)
            if throttle:
                busy = time.monotonic() - started
                time.sleep(busy * (1.0 / self.options.busy_share - 1.0))
            if len(batch) > step:
                self._run_commands(block=False)  # a command waits one piece at most

    def _feed_piece(self, batch: FrameBatch) -> None:
        engine = self.engine
        result = engine.pipeline.feed(batch)
        ctx = context_for(engine.pipeline, result)
        engine.process_context(ctx)
        self.history.add(ctx, engine.book.activity)
        self._rate.add(len(batch), self.clock(), nbytes=batch.wire_bytes)
        if self.sync is not None and result.packets.height:
            self._maybe_sync_devices()
        self._pending.devices_dirty = True

    def _source_ended(self) -> None:
        self.engine.finish()
        error = self.worker.error
        for warning in self.source.stats.warnings:
            self._emit(NoticeEvent("warning", warning))
        if error is not None:
            self.state = "failed"
            self.error = str(error)
            self._emit(NoticeEvent("error", self.error))
        else:
            self.state = "finished"
            if self.replay_source is not None:
                self._emit(NoticeEvent("information", "replay finished: every frame was read"))
        self.finished.set()
        self._pending.devices_dirty = True
        self._pending.drift_dirty = True
        self._next_status = self._next_devices = 0.0

    def _tick(self, now: float) -> None:
        if now >= self._next_pps_sample:
            self._pps.append(self._rate.per_second(now))
            self._next_pps_sample = now + 1.0
        # Views are built for someone to see: with no console attached (a daemon on its own) the
        # device and drift lists wait, dirty, for the next one (its welcome carries everything).
        watched = bool(self._subscribers)
        if self._pending.alerts:
            changes = list(self._pending.alerts.values())
            self._pending.alerts.clear()
            if watched:
                labels = self.labels
                self._emit(AlertsEvent(tuple(views.alert_row(c.alert, labels) for c in changes)))
        # While the operator types, the device list (hundreds of milliseconds of work with thousands
        # of devices) waits: it would compete with the console's answer.
        if watched and now >= self._next_devices and time.monotonic() >= self._ui_hold_until:
            self._next_devices = now + self.options.devices_interval
            if self._pending.devices_dirty:
                self._pending.devices_dirty = False
                self._emit(DevicesEvent(views.device_rows(self.engine, self.labels)))
            if self._pending.drift_dirty:
                self._pending.drift_dirty = False
                self._emit(DriftEvent(views.drift_rows(self.engine, self.labels)))
        if self.sync is not None and now >= self._next_sync:
            self._next_sync = now + self.options.sync_interval
            self._emit(SyncEvent(self.sync.status().to_dict()))
        if now >= self._next_status:
            self._next_status = now + self.options.status_interval
            previous = self._last_status
            status = self._build_status(now)
            if status != previous:  # an idle sensor (a finished replay) sends nothing
                self._emit(StatusEvent(status))
        if self.store is not None and now >= self._next_save:
            if self._next_save:
                self.save_baselines()
            self._next_save = now + self.options.save_interval
        self._memory.maybe_release()

    def _build_status(self, now: float) -> SensorStatus:
        engine = self.engine
        pipeline = engine.pipeline
        stats = self.source.stats
        ps = pipeline.stats
        open_counts = dict.fromkeys(SEVERITY_ORDER, 0)
        by_kind: dict[tuple[str, str, str], int] = {}
        for alert in engine.alerts.alerts.values():
            if alert.state in ACTIVE_STATES:
                open_counts[alert.severity.value] += 1
            key = (alert.kind, alert.severity.value, alert.state.value)
            by_kind[key] = by_kind.get(key, 0) + 1
        self.alert_counts = by_kind  # replaced whole: safe to read from another thread (metrics)
        replay = None
        source = self.replay_source
        state = self.state
        if source is not None:
            progress = source.progress()
            replay = ReplayState(
                speed=source.speed,
                paused=source.paused,
                frames_done=progress.frames_done,
                frames_total=progress.frames_total,
                fraction=progress.fraction,
                capture_start=ps.first_ts,
                capture_ts=progress.capture_ts,
                finished=progress.finished,
                file_index=progress.file_index,
                file_count=progress.file_count,
            )
            if state == "running" and source.paused:
                state = "paused"
        book = engine.book
        learning = 0.0
        if book.sensor_start is not None:
            period = book.settings.learning_period
            learning = (
                1.0 if book.loaded or period <= 0 else min((book.now - book.sensor_start) / period, 1.0)
            )
        sync_status = self.sync.status() if self.sync is not None else None
        store_state = None
        if self.store is not None:
            # Disk full or read-only: capture and detection go on in memory; the console says so.
            store_state = self.store.status().describe() if self.store.degraded else "ok"
        status = SensorStatus(
            mode="live" if getattr(self.source, "live", False) else "replay",
            source=self.source.describe(),
            state=state,
            error=self.error,
            frames=ps.frames,
            wire_bytes=ps.wire_bytes,
            packets_per_second=round(self._rate.per_second(now), 1),
            bits_per_second=round(self._rate.bytes_per_second(now) * 8, 1),
            devices=len(pipeline.devices),
            flows_open=len(pipeline.flows),
            kernel_drops=stats.kernel_drops,
            buffer_drops=stats.buffer_drops,
            decode_errors=ps.decode_error_count,
            capture_ts=ps.last_ts,
            learning=round(max(learning, 0.0), 3),
            alerts_open=open_counts,
            alerts_total=len(engine.alerts.alerts),
            pps_history=tuple(round(v, 1) for v in self._pps),
            replay=replay,
            store=store_state,
            sync_depth=getattr(sync_status, "depth", None)
            if sync_status and sync_status.configured
            else None,
            sync_state=getattr(sync_status, "state", None) if sync_status else None,
            detector_errors=sum(engine.stats.detector_errors.values()),
            data_dir=str(self.store.data_dir) if self.store is not None else None,
        )
        self._last_status = status
        return status

    # -- alerts and sync -----------------------------------------------------------------------------
    def _on_alert(self, change: AlertChange) -> None:
        self._pending.alerts[change.alert.id] = change
        self._pending.devices_dirty = True
        if self.sync is not None:
            self.sync.on_alert_change(change)  # the policy decides; it never raises

    def _mark_drift(self) -> None:
        self._pending.drift_dirty = True

    def _maybe_sync_devices(self) -> None:
        now = self.clock()
        if now < self._next_device_sync:
            return
        # The link's policy decides how often summaries really go out; building them is not free.
        self._next_device_sync = now + 60.0
        try:
            self.sync.enqueue_devices(snapshot(self.engine.pipeline.devices, self.engine.pipeline.directory))
        except Exception:
            log.exception("queueing device summaries for Asgard failed")

    # -- commands --------------------------------------------------------------------------------------
    def _enqueue(self, name: str, args: dict[str, Any]) -> Future[Any]:
        future: Future[Any] = Future()
        if self.stopped.is_set():
            future.set_exception(CommandError("the sensor has stopped"))
            return future
        self._commands.put((name, args, future))
        return future

    def _run_commands(self, block: bool) -> None:
        try:
            item = self._commands.get(timeout=0.1) if block else self._commands.get_nowait()
        except queue.Empty:
            return
        while True:
            name, args, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(self._execute(name, args))
                except BaseException as exc:
                    future.set_exception(exc)
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                return

    def _execute(self, name: str, args: dict[str, Any]) -> Any:
        if name == "_welcome":
            self._welcome(args["subscriber"])
            return None
        try:
            result = self.commands._run(name, args)
        except CommandError:
            raise
        except Exception as exc:
            log.exception("command %s failed", name)
            raise CommandError(f"{name} failed: {type(exc).__name__}: {exc}") from None
        self._pending.devices_dirty = True
        self._pending.drift_dirty = True
        self._next_status = 0.0
        self._next_devices = 0.0
        return result

    def _welcome(self, subscriber: _Subscriber) -> None:
        labels = self.labels
        alerts = sorted(self.engine.alerts.alerts.values(), key=lambda a: (a.first_seen, a.id))
        events: list[SensorEvent] = [
            StatusEvent(self._build_status(self.clock())),
            DevicesEvent(views.device_rows(self.engine, labels)),
            AlertsEvent(tuple(views.alert_row(a, labels) for a in alerts), complete=True),
            DriftEvent(views.drift_rows(self.engine, labels)),
        ]
        if self.sync is not None:
            events.append(SyncEvent(self.sync.status().to_dict()))
        events += [NoticeEvent(level, text) for level, text in self.startup_notices]
        for event in events:
            self._deliver(subscriber, event)

    def _fail_queued_commands(self) -> None:
        while True:
            try:
                _name, _args, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(CommandError("the sensor has stopped"))

    # -- publishing --------------------------------------------------------------------------------------
    def _emit(self, event: SensorEvent) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            self._deliver(subscriber, event)

    @staticmethod
    def _deliver(subscriber: _Subscriber, event: SensorEvent) -> None:
        if not subscriber.active:
            return
        try:
            subscriber.callback(event)
        except Exception:
            log.exception("a sensor event subscriber failed")
