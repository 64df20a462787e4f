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
