"""The README's table of detector settings is the detectors' own declaration of them."""

from __future__ import annotations

from pathlib import Path

from heimdal_tui.detect.registry import settings_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_detector_setting_as_declared():
    reference = settings_reference()
    assert "| `port_scan` | `window` | `60.0` | 5.0 .. 3600.0 |" in reference
    assert reference in README.read_text(encoding="utf-8"), (
        "README.md's detector settings table is out of date: paste "
        "heimdal_tui.detect.registry.settings_reference() in its place"
    )
