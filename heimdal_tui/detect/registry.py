"""Every detector, by alert kind: how to build it and what its settings are."""

from __future__ import annotations

import importlib
from typing import Any

from heimdal_tui.detect.detectors.behaviour import BEHAVIOUR_DETECTORS
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.learning import BaselineBook
from heimdal_tui.detect.model import ALERT_KINDS, DetectorSettings

# Detectors that need no baseline, one module each under heimdal_tui.detect.detectors.
STATELESS_MODULES = ("port_scan", "arp_spoof", "dns_tunnel", "beaconing", "brute_force", "threat_intel")


def _stateless_class(kind: str) -> Any:
    module = importlib.import_module(f"heimdal_tui.detect.detectors.{kind}")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "kind", None) == kind and hasattr(value, "observe"):
            return value
    raise LookupError(f"no detector class for {kind} in {module.__name__}")


def detector_classes() -> dict[str, Any]:
    classes: dict[str, Any] = {cls.kind: cls for cls in BEHAVIOUR_DETECTORS}
    for kind in STATELESS_MODULES:
        classes[kind] = _stateless_class(kind)
    return {kind: classes[kind] for kind in ALERT_KINDS}


def settings_types() -> dict[str, type[DetectorSettings]]:
    return {kind: cls.settings_type for kind, cls in detector_classes().items()}


def build_detectors(
    book: BaselineBook, intel: ThreatIntel, settings: dict[str, DetectorSettings] | None = None
) -> dict[str, Any]:
    settings = settings or {}
    built: dict[str, Any] = {}
    for kind, cls in detector_classes().items():
        chosen = settings.get(kind)
        if getattr(cls, "needs_baseline", False):
            built[kind] = cls(book, chosen)
        elif kind == "threat_intel":
            built[kind] = cls(chosen, intel)
        else:
            built[kind] = cls(chosen)
    return built


def register_settings() -> None:
    """Declare every detector's settings to the configuration model ([detectors.<kind>] tables)."""
    from heimdal_tui.config.model import register_detector_settings

    for kind, settings_type in settings_types().items():
        register_detector_settings(kind, settings_type)


def settings_reference() -> str:
    """Every detector's settings as a markdown table (kind, setting, default, range, meaning), in
    TOML notation: the README's table is this text, and a test keeps the two the same."""
    import dataclasses

    rows = ["| Detector | Setting | Default | Range | Meaning |", "|---|---|---|---|---|"]
    for kind, cls in detector_classes().items():
        first = True
        for spec in dataclasses.fields(cls.settings_type):
            if spec.name == "enabled":
                continue
            low, high = spec.metadata.get("min"), spec.metadata.get("max")
            span = f"{_toml(low)} .. {_toml(high)}" if low is not None or high is not None else ""
            label = f"`{kind}`" if first else ""
            rows.append(
                f"| {label} | `{spec.name}` | `{_toml(spec.default)}` | {span} | {spec.metadata.get('help', '')} |"
            )
            first = False
        if first:
            rows.append(f"| `{kind}` | (only `enabled`) | | | |")
    return "\n".join(rows) + "\n"


def _toml(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    return repr(value)
