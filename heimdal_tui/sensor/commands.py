"""The commands a console can send a sensor: names, JSON arguments, JSON results.

Each public method of :class:`Commands` is one command (its name is the method's); arguments and
results are JSON-ready. They run on the sensor's thread, between batches, so they see and change
the engine consistently. A command that cannot be carried out raises CommandError with a message
for the operator (an unknown alert, a value out of range, a replay-only control during live capture).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from heimdal_tui.common.durations import parse_duration
from heimdal_tui.common.text import safe_text
from heimdal_tui.config import ConfigError, save_config
from heimdal_tui.config.fields import field_specs
from heimdal_tui.detect.whatif import what_if
from heimdal_tui.devices.snapshot import iso
from heimdal_tui.sensor import views
from heimdal_tui.sensor.link import CommandError

if TYPE_CHECKING:
    from heimdal_tui.detect.engine import DetectionEngine
    from heimdal_tui.sensor.session import SensorSession

_STATE_ACTIONS = {"acknowledged": "acknowledge", "resolved": "resolve", "false_positive": "false_positive",
                  "open": "reopen"}  # fmt: skip
MAX_LABEL = 64
MAX_REASON = 500
# Replay speeds the faster/slower controls step through (None: as fast as possible).
SPEED_STEPS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, None)


class Commands:
    def __init__(self, session: SensorSession) -> None:
        self._session = session

    @classmethod
    def names(cls) -> list[str]:
        return [name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")
                and name != "names"]  # fmt: skip

    def _handler(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name == "names" or not hasattr(self, name):
            raise CommandError(f"unknown command {name!r}")
        handler: Callable[..., Any] = getattr(self, name)
        return handler

    def _run(self, name: str, args: dict[str, Any]) -> Any:
        handler = self._handler(name)
        try:
            inspect.signature(handler).bind(**args)
        except TypeError as exc:
            raise CommandError(f"{name}: {exc}") from None
        return handler(**args)

    # -- alerts ----------------------------------------------------------------------------------
    def acknowledge(self, ids: list[str], reason: str = "") -> dict[str, Any]:
        """Acknowledge alerts: the operator has seen them and is on it."""
        return self._each(ids, lambda i: self._engine.acknowledge(i, reason=_reason(reason)))

    def resolve(self, ids: list[str], reason: str = "") -> dict[str, Any]:
        """Resolve alerts: dealt with."""
        return self._each(ids, lambda i: self._engine.resolve(i, reason=_reason(reason)))

    def reopen(self, ids: list[str], reason: str = "") -> dict[str, Any]:
        """Open closed or acknowledged alerts again."""
        return self._each(ids, lambda i: self._engine.reopen(i, reason=_reason(reason)))

    def false_positive(self, ids: list[str], reason: str) -> dict[str, Any]:
        """Close alerts as false positives; the behaviour joins the device's baseline or the
        allowlist (what was learned comes back per alert)."""
        if not reason.strip():
            raise CommandError("a false positive needs a reason: it goes into the audit trail")
        learned: dict[str, Any] = {}

        def mark(alert_id: str) -> None:
            self._engine.mark_false_positive(alert_id, reason=_reason(reason))
            entries = [
                e for e in self._engine.audit if e.alert_id == alert_id and e.action == "false_positive"
            ]
            learned[alert_id] = entries[-1].detail.get("learned") if entries else None

        result = self._each(ids, mark)
        result["learned"] = learned
        self._session.save_baselines()
        return result

    def snooze(self, ids: list[str], duration: str | float, reason: str = "") -> dict[str, Any]:
        """Silence each alert's (device, kind, peer) for ``duration`` ("30m", "2h", "1d" or seconds)
        of capture time."""
        seconds = _seconds(duration)
        until: dict[str, float] = {}

        def snooze_one(alert_id: str) -> None:
            rule = self._engine.snooze(alert_id, seconds, reason=_reason(reason))
            until[alert_id] = rule.until

        result = self._each(ids, snooze_one)
        result["until"] = until
        return result

    def alert_detail(self, id: str) -> dict[str, Any]:
        """One alert with its evidence and its triage history."""
        alert = self._engine.alerts.alerts.get(id)
        if alert is None:
            raise CommandError(f"no alert {id!r}")
        history = [
            {"ts": e.ts, "wall_time": e.wall_time, "actor": e.actor, "action": e.action, "reason": e.reason}
            for e in self._engine.audit
            if e.alert_id == id
        ]
        store = self._session.store
        if store is not None and not history:
            history = [
                {
                    "ts": row.get("ts"),
                    "wall_time": row.get("wall_time"),
                    "actor": row.get("actor"),
                    # The store records state changes as set_state with the new state in the detail.
                    "action": _STATE_ACTIONS.get(str((row.get("detail") or {}).get("to")), row.get("action"))
                    if row.get("action") == "set_state"
                    else row.get("action"),
                    "reason": (row.get("detail") or {}).get("reason", ""),
                }
                for row in store.audit(alert_id=id)
            ]
        return {
            "alert": dataclasses.asdict(views.alert_row(alert, self._session.labels)),
            "json": alert.to_dict(),
            "history": history,
        }

    # -- devices ---------------------------------------------------------------------------------
    def device_detail(self, key: int) -> dict[str, Any]:
        """A device in depth: identity, baseline beside current behaviour, its alerts."""
        try:
            return views.device_detail(self._engine, int(key), self._session.labels)
        except KeyError:
            raise CommandError(f"no device {key}") from None

    def label_device(self, key: int, label: str) -> dict[str, Any]:
        """Name a device (an empty label removes the operator's name)."""
        key = int(key)
        self._known_device(key)
        text = safe_text(" ".join(label.split()), MAX_LABEL)
        self._session.set_label(key, text or None)
        self._engine.record("label_device", "operator", "", None, {"device": key, "label": text})
        return {"key": key, "label": text or None}

    def reset_baseline(self, key: int, reason: str = "") -> dict[str, Any]:
        """Forget what the device's baseline learned; it learns again for a whole learning period."""
        key = int(key)
        self._known_device(key)
        book = self._engine.book
        book.baselines.pop(key, None)
        book.loaded_devices.discard(key)
        self._engine.drift.pending.pop(key, None)
        self._engine.drift.history.pop(key, None)
        self._engine.saves.forget(key)
        store = self._session.store
        if store is not None:
            store.delete_baseline(key)
        self._engine.record("reset_baseline", "operator", _reason(reason), None, {"device": key})
        return {"key": key, "reset": True}

    def freeze_learning(self, key: int, frozen: bool = True, reason: str = "") -> dict[str, Any]:
        """Stop (or restart) the device's baseline absorbing anything new."""
        key = int(key)
        self._known_device(key)
        base = self._engine.book.baselines.get(key)
        if base is None:
            raise CommandError(f"device {key} has no baseline yet")
        base.frozen = bool(frozen)
        action = "freeze_learning" if frozen else "unfreeze_learning"
        self._engine.record(action, "operator", _reason(reason), None, {"device": key})
        self._session.save_baselines()
        return {"key": key, "frozen": base.frozen}

    def accept_drift(self, key: int, reason: str = "") -> dict[str, Any]:
        """Merge what the device did that its baseline never had into the baseline."""
        key = int(key)
        if key not in self._engine.book.baselines:
            raise CommandError(f"device {key} has no baseline")
        merged = self._engine.accept_drift(key, reason=_reason(reason))
        self._engine.drift.history.pop(key, None)
        return {"key": key, "merged": merged}

    # -- thresholds ------------------------------------------------------------------------------
    def thresholds(self) -> dict[str, Any]:
        """Every detector's settings: value, type, allowed range and help."""
        out: dict[str, Any] = {}
        for kind, settings in self._engine.detector_settings().items():
            detector = self._engine.detectors[kind]
            fields = []
            for name, spec in field_specs(type(settings)).items():
                value = getattr(settings, name)
                fields.append(
                    {
                        "key": name,
                        "value": list(value) if isinstance(value, tuple) else value,
                        "default": list(spec.default) if isinstance(spec.default, tuple) else spec.default,
                        "type": spec.type.kind,
                        "item_type": spec.type.item.kind if spec.type.item else None,
                        "minimum": spec.minimum,
                        "maximum": spec.maximum,
                        "above": spec.above,
                        "range": spec.describe_range(),
                        "help": spec.help,
                    }
                )
            out[kind] = {"needs_baseline": bool(getattr(detector, "needs_baseline", False)), "fields": fields}
        return out

    def what_if(self, kind: str, values: dict[str, Any]) -> dict[str, Any]:
        """How many alerts ``kind`` would have raised over the recent history with ``values``."""
        current = self._current_settings(kind)
        proposed = self._validated(kind, values)
        engine = self._engine
        return what_if(
            kind, current, proposed, self._session.history, engine.book, engine.intel,
            engine.settings.correlation_window,
        )  # fmt: skip

    def set_thresholds(self, kind: str, values: dict[str, Any], save: bool = True) -> dict[str, Any]:
        """Apply new settings to one detector now (the next batch uses them) and, with ``save``,
        write them to the configuration file."""
        settings = self._validated(kind, values)
        self._engine.set_detector_settings(kind, settings)
        self._engine.record("set_threshold", "operator", "", None, {"detector": kind, "values": values})
        session = self._session
        session.config = dataclasses.replace(
            session.config, detectors={**session.config.detectors, kind: settings}
        )
        saved_to = None
        if save:
            path = session.config_path
            if path is None:
                raise CommandError("applied, but not saved: this sensor has no configuration file path")
            try:
                save_config(session.config, path)
            except (OSError, ConfigError) as exc:
                raise CommandError(f"applied, but could not save {path}: {exc}") from None
            saved_to = str(path)
        return {"kind": kind, "saved_to": saved_to, "settings": _settings_dict(settings)}

    # -- replay ----------------------------------------------------------------------------------
    def replay(self, action: str, value: float | None = None) -> dict[str, Any]:
        """Control a replay: pause, resume, toggle, step (``value`` frames, default 100), faster,
        slower, speed (``value``; none = as fast as possible)."""
        source = self._session.replay_source
        if source is None:
            raise CommandError("replay controls work only while replaying a capture")
        if action == "pause":
            source.pause()
        elif action == "resume":
            source.resume()
        elif action == "toggle":
            source.resume() if source.paused else source.pause()
        elif action == "step":
            source.step(int(value or 100))
        elif action in ("faster", "slower"):
            source.set_speed(_next_speed(source.speed, +1 if action == "faster" else -1))
        elif action == "speed":
            if value is not None and float(value) <= 0:
                raise CommandError("a replay speed must be positive (or none: as fast as possible)")
            source.set_speed(None if value is None else float(value))
        else:
            raise CommandError(f"unknown replay action {action!r}")
        return {"paused": source.paused, "speed": source.speed}

    # -- sync --------------------------------------------------------------------------------------
    def sync(self, action: str, item_id: str | None = None) -> dict[str, Any]:
        """Control the Asgard queue: pause, resume, retry (an item, or every waiting one), drop (an item)."""
        link = self._session.sync
        if link is None:
            raise CommandError("sync with Asgard is not configured")
        if not link.configured:
            raise CommandError(f"sync with Asgard is off: {link.reason}")
        if action == "pause":
            link.pause()
        elif action == "resume":
            link.resume()
        elif action == "retry":
            link.retry_now(item_id)
        elif action == "drop":
            if not item_id:
                raise CommandError("drop needs an item")
            link.drop(item_id)
        else:
            raise CommandError(f"unknown sync action {action!r}")
        self._session.publish_sync()
        return {"action": action, "item": item_id}

    def sync_preview(self, item_id: str) -> str:
        """The exact anonymized JSON of a queued item, as it will leave the network."""
        link = self._session.sync
        if link is None:
            raise CommandError("sync with Asgard is not configured")
        try:
            return str(link.preview(item_id))
        except KeyError:
            raise CommandError(f"no queued item {item_id!r}") from None

    # -- the sensor ------------------------------------------------------------------------------
    def reload_config(self) -> dict[str, Any]:
        """Read the configuration file again and apply, without restart, what can change live:
        every detector's settings and the alert correlation window. Names the sections whose
        change needs a restart. A broken file changes nothing (CommandError lists its problems)."""
        from heimdal_tui.config import load_config
        from heimdal_tui.config.validation import detector_settings

        session = self._session
        if session.config_path is None:
            raise CommandError("this sensor has no configuration file to reload")
        try:
            new = load_config(session.config_path)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        old = session.config
        changed = []
        for kind in self._engine.detectors:
            settings = detector_settings(new, kind)
            if settings != self._engine.detectors[kind].settings:
                self._engine.set_detector_settings(kind, settings)
                changed.append(f"detectors.{kind}")
        if new.alerts.correlation_window != self._engine.alerts.correlation_window:
            self._engine.alerts.correlation_window = new.alerts.correlation_window
            changed.append("alerts.correlation_window")
        restart = [
            section
            for section in ("capture", "devices", "baseline", "store", "asgard")
            if getattr(new, section) != getattr(old, section)
        ]
        session.config = new
        self._engine.record("reload_config", "operator", "", None, {"changed": changed, "restart": restart})
        return {"applied": changed, "needs_restart": restart, "path": str(session.config_path)}

    def save_baselines(self) -> dict[str, Any]:
        """Bring the store's baselines up to date now, ``last_seen`` included (the sensor also writes
        those that changed every minute, and all that moved on at exit). ``saved``: how many were
        written; ``baselines``: how many the sensor holds."""
        saved = self._session.save_baselines(final=True)
        return {"saved": saved, "baselines": len(self._engine.book.baselines)}

    def info(self) -> dict[str, Any]:
        """Where the sensor keeps its files and what it runs."""
        session = self._session
        return {
            "source": session.source.describe(),
            "data_dir": str(session.store.data_dir) if session.store is not None else None,
            "config_path": str(session.config_path) if session.config_path else None,
            "capture_start": iso(session.engine.pipeline.stats.first_ts),
            "state": session.state,
            "error": session.error,
            "store": session.store.status().describe() if session.store is not None else None,
            "store_degraded": bool(session.store.degraded) if session.store is not None else False,
            "commands": self.names(),
        }

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def _engine(self) -> DetectionEngine:
        return self._session.engine

    def _each(self, ids: list[str], action: Callable[[str], Any]) -> dict[str, Any]:
        if isinstance(ids, str):
            ids = [ids]
        done, missing = [], []
        for alert_id in ids:
            try:
                action(str(alert_id))
            except KeyError:
                missing.append(alert_id)
                continue
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            done.append(alert_id)
        if missing and not done:
            raise CommandError(f"no such alert: {', '.join(map(str, missing))}")
        return {"done": done, "missing": missing}

    def _known_device(self, key: int) -> None:
        if key not in self._engine.pipeline.directory.identities and key not in self._engine.book.baselines:
            raise CommandError(f"no device {key}")

    def _current_settings(self, kind: str) -> Any:
        detector = self._engine.detectors.get(kind)
        if detector is None:
            raise CommandError(f"no detector {kind!r} (known: {', '.join(self._engine.detectors)})")
        return detector.settings

    def _validated(self, kind: str, values: dict[str, Any]) -> Any:
        """The detector's current settings with ``values`` applied, each checked as the config
        file would check it; CommandError listing every problem."""
        from heimdal_tui.config.model import Config
        from heimdal_tui.config.validation import with_detector_setting

        current = self._current_settings(kind)
        config = Config(detectors={kind: current})
        problems: list[str] = []
        for key, value in values.items():
            try:
                config = with_detector_setting(config, kind, key, value)
            except ConfigError as exc:
                problems.extend(str(issue) for issue in exc.issues)
        if problems:
            raise CommandError("; ".join(problems))
        return config.detectors[kind]


def _settings_dict(settings: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()}


def _reason(text: str) -> str:
    return safe_text(" ".join(str(text).split()), MAX_REASON)


def _seconds(duration: str | float) -> float:
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        try:
            seconds = parse_duration(str(duration))
        except ValueError as exc:
            raise CommandError(f"snooze duration: {exc}") from None
    if seconds <= 0:
        raise CommandError("a snooze needs a positive duration")
    return seconds


def _next_speed(speed: float | None, direction: int) -> float | None:
    steps = SPEED_STEPS
    if speed is None:
        index = len(steps) - 1
    else:
        finite = [s for s in steps if s is not None]
        index = min(range(len(finite)), key=lambda i: abs(finite[i] - speed))
    index = max(0, min(len(steps) - 1, index + direction))
    return steps[index]
