"""The detector settings registry, detector_settings() and with_detector_setting()."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from heimdal_tui.config import (
    Config,
    ConfigError,
    detector_settings,
    load_config,
    register_detector_settings,
    registered_detectors,
    save_config,
    with_detector_setting,
)
from heimdal_tui.config.model import DETECTOR_SETTINGS
from heimdal_tui.detect.model import DetectorSettings, setting


@dataclass(frozen=True, slots=True)
class ScanSettings(DetectorSettings):
    vertical_ports: int = setting(25, minimum=10, maximum=65535, help="distinct ports in the window")
    window: float = setting(60.0, minimum=1.0, help="seconds")
    ports: tuple[int, ...] = setting((22,), minimum=1, maximum=65535)
    mode: Literal["fast", "slow"] = setting("fast")
    label: str | None = setting(None)


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    saved = dict(DETECTOR_SETTINGS)
    DETECTOR_SETTINGS.clear()
    register_detector_settings("port_scan", ScanSettings)
    yield
    DETECTOR_SETTINGS.clear()
    DETECTOR_SETTINGS.update(saved)


def test_registration_checks_the_settings_class():
    assert registered_detectors() == {"port_scan": ScanSettings}

    class NotSettings:
        pass

    with pytest.raises(TypeError, match="not a DetectorSettings subclass"):
        register_detector_settings("x", NotSettings)  # type: ignore[arg-type]

    @dataclass(frozen=True, slots=True)
    class Nested(DetectorSettings):
        table: dict[str, Any] = field(default_factory=dict)

    with pytest.raises(TypeError, match=r"Nested.table: unsupported type"):
        register_detector_settings("y", Nested)
    assert "y" not in registered_detectors()


def test_detector_settings_defaults_and_configured():
    config = Config()
    assert detector_settings(config, "port_scan") == ScanSettings()
    configured = with_detector_setting(config, "port_scan", "vertical_ports", 40)
    assert detector_settings(configured, "port_scan") == ScanSettings(vertical_ports=40)
    with pytest.raises(KeyError):
        detector_settings(config, "nope")


def test_with_detector_setting_returns_a_new_config():
    config = Config()
    changed = with_detector_setting(config, "port_scan", "window", 30)
    assert config.detectors == {}
    value = detector_settings(changed, "port_scan")
    assert isinstance(value, ScanSettings)
    assert value.window == 30.0 and isinstance(value.window, float)
    both = with_detector_setting(changed, "port_scan", "ports", [80, 443])
    assert detector_settings(both, "port_scan") == ScanSettings(window=30.0, ports=(80, 443))
    assert with_detector_setting(both, "port_scan", "label", None) == both


def test_with_detector_setting_refuses_with_key_and_range():
    config = Config()
    with pytest.raises(ConfigError) as caught:
        with_detector_setting(config, "port_scan", "vertical_ports", 5)
    assert [str(i) for i in caught.value.issues] == [
        "detectors.port_scan.vertical_ports: must be between 10 and 65535, got 5"
    ]
    with pytest.raises(ConfigError) as caught:
        with_detector_setting(config, "port_scan", "vertical_ports", True)
    assert [str(i) for i in caught.value.issues] == [
        "detectors.port_scan.vertical_ports: expected an integer, got true (allowed: between 10 and 65535)"
    ]
    with pytest.raises(ConfigError, match=r"detectors.port_scan.window: must be at least 1, got 0"):
        with_detector_setting(config, "port_scan", "window", 0)
    with pytest.raises(
        ConfigError, match=r'detectors.port_scan.mode: must be one of "fast", "slow", got "x"'
    ):
        with_detector_setting(config, "port_scan", "mode", "x")
    with pytest.raises(ConfigError, match=r"detectors.port_scan.speed: unknown key \(allowed: enabled, "):
        with_detector_setting(config, "port_scan", "speed", 1)
    with pytest.raises(ConfigError, match=r"detectors.nope: unknown detector \(known: port_scan\)"):
        with_detector_setting(config, "nope", "enabled", False)
    with pytest.raises(ConfigError, match=r"detectors.port_scan.ports\[0\]: must be between 1 and 65535"):
        with_detector_setting(config, "port_scan", "ports", [0])


def test_changed_settings_survive_a_save(tmp_path: Path):
    config = with_detector_setting(Config(), "port_scan", "mode", "slow")
    config = with_detector_setting(config, "port_scan", "label", "lab")
    save_config(config, tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == config
