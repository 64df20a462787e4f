"""Building a SensorSession from the configuration and command-line choices.

One function for the console and the daemon alike, so both run the same engine the same way:
:func:`build_session` takes a :class:`SensorSpec` (what the operator asked for) and returns a
session that is ready to ``start()``, or raises SetupError with a message naming what is wrong
(a bad option, an unreadable intel file, no such interface, a store that cannot be opened).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heimdal_tui.capture.errors import CaptureError
from heimdal_tui.capture.source import FrameSource
from heimdal_tui.config import Config, ConfigError, detector_settings, effective_data_dir, load_config
from heimdal_tui.config.paths import default_config_path
from heimdal_tui.detect.baseline import load_profiles
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.detect.registry import register_settings, settings_types
from heimdal_tui.pipeline.engine import Pipeline, PipelineSettings
from heimdal_tui.sensor.session import SensorSession, SessionOptions

# A replay learns for this long unless told otherwise: captures are short (the sample's benign
# stretch is 20 minutes); live capture uses the configured learning period (a day by default).
REPLAY_LEARNING_PERIOD = 20 * 60.0


class SetupError(Exception):
    """The sensor cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SensorSpec:
    replay: tuple[str, ...] = ()  # capture files to replay; empty: live capture
    speed: float | None = 1.0  # replay pace (None: as fast as possible)
    interface: str | None = None
    bpf_filter: str | None = None
    config_path: Path | None = None
    data_dir: Path | None = None  # None: the configured/platform data dir (live), a temporary one (replay)
    learning_period: float | None = None
    intel_files: tuple[str, ...] = ()
    profiles: str | None = None
    local_networks: tuple[str, ...] = ()
    options: SessionOptions | None = None
    clock: Callable[[], float] = time.monotonic  # tests freeze it
    # Send to Asgard (when configured). A replay does not unless asked: a demo of a sample capture
    # must not reach the cloud as if it were this network.
    sync: bool | None = None


@dataclass
class BuiltSession:
    session: SensorSession
    config: Config
    config_path: Path
    temporary_dir: Path | None = None

    def cleanup(self) -> None:
        """Stop the session and the Asgard link, close the store and remove a temporary data dir."""
        self.session.stop()
        if self.session.sync is not None:
            self.session.sync.stop()
        if self.session.store is not None:
            self.session.store.close()
        if self.temporary_dir is not None:
            shutil.rmtree(self.temporary_dir, ignore_errors=True)


def load_sensor_config(path: Path | None) -> tuple[Config, Path]:
    """The configuration in force and the path it is (or would be) saved to."""
    register_settings()
    chosen = path or default_config_path()
    try:
        return load_config(path), chosen
    except ConfigError as exc:
        raise SetupError(str(exc)) from None


def build_session(spec: SensorSpec) -> BuiltSession:
    config, config_path = load_sensor_config(spec.config_path)
    source = _source(spec, config)
    pipeline = _pipeline(spec, config, live=not spec.replay)
    engine = build_engine(
        pipeline,
        config,
        learning_period=spec.learning_period
        if spec.learning_period is not None
        else (REPLAY_LEARNING_PERIOD if spec.replay else config.baseline.learning_period),
        intel_files=spec.intel_files,
        profiles_path=spec.profiles,
    )
    temporary = None
    data_dir = spec.data_dir
    if data_dir is None and spec.replay:
        # A replay must not teach the sensor's own store what a sample capture did.
        temporary = Path(tempfile.mkdtemp(prefix="heimdal-replay-"))
        data_dir = temporary
    store = open_store(data_dir or effective_data_dir(config), engine)
    sync = None
    if spec.sync if spec.sync is not None else not spec.replay:
        sync = open_sync(config, store, engine)
    session = SensorSession(
        source,
        engine,
        store=store,
        sync=sync,
        config=config,
        config_path=config_path,
        options=spec.options,
        clock=spec.clock,
    )
    if store.recovered:
        session.startup_notices.append(("warning", store.recovered))
    if sync is not None and not sync.configured and sync.reason:
        session.startup_notices.append(("warning", f"Asgard sync is off: {sync.reason}"))
    return BuiltSession(session, config, config_path, temporary)


def open_sync(config: Config, store: Any, engine: DetectionEngine) -> Any:
    """The Asgard link of this configuration, started, its intelligence wired into the engine
    (None when no Asgard URL is configured)."""
    from heimdal_tui.asgard.link import AsgardLink

    link = AsgardLink(config.asgard, store)
    if not link.configured:
        # A URL but something missing (the key, the CA file): keep the link so screen 5 says what.
        return link if link.credentials.url else None
    link.apply_intelligence(engine.intel, engine.book)
    link.start()
    return link


def _source(spec: SensorSpec, config: Config) -> FrameSource:
    try:
        if spec.replay:
            from heimdal_tui.capture.replay import ReplaySource

            missing = [p for p in spec.replay if not Path(p).is_file()]
            if missing:
                raise SetupError(f"no such capture file: {', '.join(missing)}")
            return ReplaySource(list(spec.replay), speed=spec.speed)
        from heimdal_tui.capture.live import LiveSource

        return LiveSource(
            spec.interface or config.capture.interface, spec.bpf_filter or config.capture.filter
        )
    except (CaptureError, ValueError) as exc:
        raise SetupError(str(exc)) from None


def _pipeline(spec: SensorSpec, config: Config, live: bool) -> Pipeline:
    limits = config.devices.limits()
    if not live:
        # A capture file is a closed record: keep every device it shows (the cap still bounds memory).
        limits = dataclasses.replace(limits, idle_timeout=float("inf"))
    networks = spec.local_networks or tuple(config.capture.local_networks)
    try:
        return Pipeline(PipelineSettings(local_networks=networks, device_limits=limits))
    except ValueError as exc:
        raise SetupError(f"local networks: {exc}") from None


def build_engine(
    pipeline: Pipeline,
    config: Config,
    *,
    learning_period: float,
    intel_files: tuple[str, ...] = (),
    profiles_path: str | None = None,
    baseline_path: str | None = None,
    warn: Any = None,
) -> DetectionEngine:
    """The detection engine the configuration describes, with intel files, golden profiles and a
    saved baseline file loaded. SetupError names a file that cannot be used."""
    register_settings()
    intel = ThreatIntel()
    for path in [*(str(p) for p in config.intel.files), *intel_files]:
        try:
            report = intel.load_file(Path(path))
        except OSError as exc:
            raise SetupError(f"intel file {path}: {exc.strerror or exc}") from None
        if warn is not None:
            for problem in report.errors[:10]:
                warn(problem)
    profiles = None
    if profiles_path:
        try:
            profiles = load_profiles(json.loads(Path(profiles_path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise SetupError(f"profiles {profiles_path}: {exc}") from None
    settings = DetectionSettings(
        learning=LearningSettings(learning_period=learning_period, min_maturity=config.baseline.min_maturity),
        correlation_window=config.alerts.correlation_window,
        max_alerts=config.alerts.max_open_alerts,
        detectors={kind: detector_settings(config, kind) for kind in settings_types()},
    )
    engine = DetectionEngine(pipeline, settings, intel=intel, profiles=profiles)
    if baseline_path:
        try:
            engine.book.load_dict(json.loads(Path(baseline_path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise SetupError(f"baseline {baseline_path}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise SetupError(f"baseline {baseline_path}: not a usable baseline file ({exc})") from None
    return engine


def open_store(data_dir: Path, engine: DetectionEngine) -> Any:
    """The store in ``data_dir``, with its baselines loaded into ``engine`` and ``engine`` attached."""
    from heimdal_tui.store import Store, StoreError

    try:
        # On a read-only file system an existing store opens read-only and degraded: monitoring
        # goes on in memory rather than not at all.
        store = Store.open(data_dir, allow_read_only=True)
    except StoreError as exc:
        raise SetupError(f"data dir {data_dir}: {exc}") from None
    engine.load_baselines(store)
    engine.attach_store(store)
    return store
