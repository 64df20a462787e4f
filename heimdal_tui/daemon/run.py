"""``heimdal-tui daemon``: capture, detection, store and sync, headless, with consoles attaching.

Start: configuration, the data directory's single-instance lock, JSON logs, the sensor session
(live capture, or ``--replay``), the attach socket, retention in the background, and /metrics when
asked. Then it waits for signals:

- SIGTERM / SIGINT: stop capture, flush (baselines, the store, the Asgard queue) and exit 0; the
  whole shutdown is bounded to :data:`SHUTDOWN_BUDGET` seconds.
- SIGHUP: read the configuration again and apply what can change live (detector settings, the
  correlation window, log level and destination, retention); a broken file changes nothing and is
  logged.

Consoles attach over ``<data_dir>/daemon.sock`` (mode 0660), any number at once; detaching (or an
SSH session dropping) leaves monitoring running.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from heimdal_tui.config import ConfigError, effective_data_dir, load_config
from heimdal_tui.daemon.server import AttachError, AttachServer
from heimdal_tui.sensor.build import BuiltSession, SensorSpec, SetupError, build_session, load_sensor_config
from heimdal_tui.sensor.link import CommandError
from heimdal_tui.service.lock import DaemonAlreadyRunning, DaemonLock, DaemonLockError, socket_path

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET = 5.0  # seconds from SIGTERM to exit
# The data directory: owner everything, group may reach the socket and lock file by name only.
DATA_DIR_MODE = 0o710


class DaemonError(Exception):
    """The daemon cannot start; the message says why."""


@dataclass
class Daemon:
    spec: SensorSpec
    metrics: str | None = None
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    reload_requested: threading.Event = field(default_factory=threading.Event)
    built: BuiltSession | None = None
    server: AttachServer | None = None
    lock: DaemonLock | None = None
    retention: Any = None
    metrics_server: Any = None
    metrics_url: str | None = None
    data_dir: Path | None = None

    def start(self) -> None:
        # Files the daemon creates (store, logs, lock) are for its user and group only.
        os.umask(0o027)
        config, _path = load_sensor_config(self.spec.config_path)
        data_dir = Path(self.spec.data_dir or effective_data_dir(config)).expanduser()
        self.data_dir = data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise DaemonError(f"cannot create the data directory {data_dir}: {exc.strerror or exc}") from None
        self.lock = DaemonLock(data_dir)
        try:
            self.lock.acquire()
        except DaemonAlreadyRunning as exc:
            raise DaemonError(f"{exc}; attach to it with `heimdal-tui --attach`") from None
        except DaemonLockError as exc:
            raise DaemonError(str(exc)) from None
        try:
            self._start_locked(config, data_dir)
        except BaseException:
            self.stop()
            raise

    def _start_locked(self, config: Any, data_dir: Path) -> None:
        from heimdal_tui.service.logs import LogSetupError, configure_logging

        try:
            setup = configure_logging(config.logging, data_dir)
        except LogSetupError as exc:
            self.stderr.write(f"heimdal-tui daemon: {exc}; logging to stderr\n")
            setup = None
        spec = dataclasses.replace(self.spec, data_dir=data_dir)
        try:
            self.built = build_session(spec)
        except SetupError as exc:
            raise DaemonError(str(exc)) from None
        session = self.built.session
        # Group members may reach the socket (0660) and read the lock file by name; nothing else.
        try:
            os.chmod(data_dir, DATA_DIR_MODE)
        except OSError as exc:
            log.warning("cannot set the mode of %s: %s", data_dir, exc)
        try:
            self.server = AttachServer(
                session, socket_path(data_dir), info={"source": session.source.describe()}
            )
        except AttachError as exc:
            raise DaemonError(str(exc)) from None
        session.start()
        self.server.start()
        self.retention = _start_retention(session, config)
        if self.metrics:
            from heimdal_tui.daemon.metrics import MetricsError, serve_metrics

            try:
                self.metrics_server, self.metrics_url = serve_metrics(session, self.metrics)
            except MetricsError as exc:
                raise DaemonError(str(exc)) from None
        log.info(
            "daemon started",
            extra={
                "source": session.source.describe(),
                "data_dir": str(data_dir),
                "socket": str(self.server.path),
                "metrics": self.metrics_url,
                "logs": setup.describe() if setup else "stderr",
            },
        )
        self.stderr.write(
            f"heimdal-tui daemon: {session.source.describe()}; store {data_dir}; consoles attach at "
            f"{self.server.path}" + (f"; metrics at {self.metrics_url}" if self.metrics_url else "") + "\n"
        )
        self.stderr.flush()

    def run(self) -> int:
        """Wait for signals (installed only on the main thread) until asked to stop."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stop_requested.set())
            signal.signal(signal.SIGINT, lambda *_: self.stop_requested.set())
            signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        while not self.stop_requested.wait(0.2):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
        return self.stop()

    def reload(self) -> dict[str, Any] | None:
        """SIGHUP: apply the configuration file again; None when it could not be."""
        built = self.built
        if built is None:
            return None
        try:
            result: dict[str, Any] = built.session.call("reload_config")
        except CommandError as exc:
            log.error("configuration not reloaded: %s", exc)
            self.stderr.write(f"heimdal-tui daemon: configuration not reloaded: {exc}\n")
            return None
        try:
            config = load_config(built.config_path)
        except ConfigError:
            return result
        from heimdal_tui.service.logs import LogSetupError, configure_logging

        try:
            configure_logging(config.logging, self.data_dir or Path("."))
        except LogSetupError as exc:
            log.error("log settings not reloaded: %s", exc)
        if self.retention is not None:
            self.retention.update_policy(config.retention)
        log.info("configuration reloaded", extra=result)
        if result["needs_restart"]:
            log.warning("these sections changed and need a restart: %s", ", ".join(result["needs_restart"]))
        return result

    def stop(self) -> int:
        """Stop everything within the shutdown budget, flushing what must be kept."""
        deadline = time.monotonic() + SHUTDOWN_BUDGET
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server = None
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.retention is not None:
            self.retention.stop(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            self.retention = None
        if self.built is not None:
            built, self.built = self.built, None
            built.session.stop(timeout=max(0.5, deadline - time.monotonic() - 1.0))
            if built.session.sync is not None:
                built.session.sync.stop(timeout=max(0.1, deadline - time.monotonic() - 0.5))
            if built.session.store is not None:
                built.session.store.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        log.info("daemon stopped")
        return 0


def _start_retention(session: Any, config: Any) -> Any:
    if session.store is None:
        return None
    from heimdal_tui.service.retention import RetentionWorker

    engine = session.engine
    worker = RetentionWorker(
        session.store,
        config.retention,
        sync_queue=session.sync if session.sync is not None and session.sync.configured else None,
        # Age limits of capture-time records count in capture time (a replay has its own clock).
        capture_clock=lambda: engine.now or time.time(),
    )
    worker.start()
    return worker
