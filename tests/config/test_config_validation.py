"""Validation of parsed TOML: every problem kind, named by its key path, all reported at once."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heimdal_tui.config import (
    Config,
    ConfigError,
    config_from_dict,
    register_detector_settings,
    validate,
)
from heimdal_tui.config.model import DETECTOR_SETTINGS, SECTIONS
from heimdal_tui.detect.model import DetectorSettings, setting

# Every top-level table, in the order the model declares them (other work adds sections).
TABLES = ", ".join([*SECTIONS, "detectors"])


@dataclass(frozen=True, slots=True)
class ScanSettings(DetectorSettings):
    vertical_ports: int = setting(25, minimum=10, maximum=65535, help="distinct ports")
    window: float = setting(60.0, minimum=1.0, maximum=3600.0, help="seconds")
    ports: tuple[int, ...] = setting((22, 23), minimum=1, maximum=65535, help="watched ports")


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    saved = dict(DETECTOR_SETTINGS)
    DETECTOR_SETTINGS.clear()
    register_detector_settings("port_scan", ScanSettings)
    yield
    DETECTOR_SETTINGS.clear()
    DETECTOR_SETTINGS.update(saved)


def lines(text: str) -> list[str]:
    return [str(issue) for issue in validate(tomllib.loads(text))]


def test_empty_document_is_the_defaults():
    assert validate({}) == []
    assert config_from_dict({}) == Config()


def test_a_full_valid_document():
    config = config_from_dict(
        tomllib.loads(
            """
            [capture]
            interface = "eth0"
            filter = "not port 22"
            local_networks = ["10.0.0.0/8", "2001:db8::/32"]
            [devices]
            max_devices = 100
            idle_timeout = 3600          # an integer where a number is expected is fine
            total_peers = 20000
            [baseline]
            learning_period = 7200
            min_maturity = 0.5
            [alerts]
            correlation_window = 0
            max_open_alerts = 50
            [intel]
            files = ["/etc/heimdal/bad-ips.txt", "feeds/domains.txt"]
            [store]
            data_dir = "~/heimdal"
            [ui]
            theme = "nord"
            [detectors.port_scan]
            vertical_ports = 40
            ports = [22, 3389]
            """
        )
    )
    assert config.capture.interface == "eth0"
    assert config.capture.local_networks == ("10.0.0.0/8", "2001:db8::/32")
    assert config.devices.max_devices == 100
    assert config.devices.idle_timeout == 3600.0 and isinstance(config.devices.idle_timeout, float)
    assert config.baseline.learning_period == 7200.0
    assert config.intel.files == (Path("/etc/heimdal/bad-ips.txt"), Path("feeds/domains.txt"))
    assert config.store.data_dir == Path("~/heimdal")
    assert config.detectors == {"port_scan": ScanSettings(vertical_ports=40, ports=(22, 3389))}
    assert config.devices.limits().max_devices == 100
    assert config.devices.limits().bucket_seconds == 10.0
    assert config.devices.limits().total_peers == 20_000 and config.devices.limits().total_names == 32_768


def test_unknown_keys_name_what_is_allowed():
    assert lines("[alerts]\nunknown_key = 1\n") == [
        "alerts.unknown_key: unknown key (allowed: correlation_window, max_open_alerts)"
    ]
    assert lines("bogus = 1\n") == [f"bogus: unknown key (allowed: {TABLES})"]
    assert lines('[ui]\n"odd key" = 1\n') == ['ui."odd key": unknown key (allowed: theme)']


def test_type_errors():
    assert lines('[baseline]\nlearning_period = "a day"\n') == [
        'baseline.learning_period: expected a number, got "a day"'
    ]
    assert lines("capture = 3\n") == ["capture: expected a table, got 3"]
    assert lines("[devices]\nmax_devices = 5.5\n") == ["devices.max_devices: expected an integer, got 5.5"]
    assert lines("[ui]\ntheme = 1979-05-27\n") == ["ui.theme: expected a string, got a date/time 1979-05-27"]
    assert lines("[ui]\ntheme = {a = 1}\n") == ["ui.theme: expected a string, got a table"]
    assert lines("[intel]\nfiles = 3\n") == ["intel.files: expected a list of paths, got 3"]


def test_bool_is_not_a_number_and_a_number_is_not_a_bool():
    assert lines("[devices]\nmax_devices = true\n") == ["devices.max_devices: expected an integer, got true"]
    assert lines("[alerts]\ncorrelation_window = false\n") == [
        "alerts.correlation_window: expected a number, got false"
    ]
    assert lines("[detectors.port_scan]\nenabled = 1\n") == [
        "detectors.port_scan.enabled: expected true or false, got 1"
    ]


def test_ranges():
    assert lines("[baseline]\nmin_maturity = 2\n") == [
        "baseline.min_maturity: must be between 0 and 1, got 2"
    ]
    assert lines("[baseline]\nlearning_period = 0\n") == [
        "baseline.learning_period: must be greater than 0, got 0"
    ]
    assert lines("[baseline]\nlearning_period = -1.5\n") == [
        "baseline.learning_period: must be greater than 0, got -1.5"
    ]
    assert lines("[alerts]\nmax_open_alerts = 0\n") == [
        "alerts.max_open_alerts: must be between 1 and 1000000, got 0"
    ]
    assert lines("[alerts]\ncorrelation_window = nan\n") == [
        "alerts.correlation_window: must be a finite number, got nan"
    ]


def test_networks_and_lists():
    assert lines('[capture]\nlocal_networks = ["10.0.0.0/8", "192.168.1.0/24", "10.0.0.0/33"]\n') == [
        "capture.local_networks[2]: '10.0.0.0/33' is not a network"
    ]
    assert lines('[capture]\nlocal_networks = ["10.0.0.0/8", 5, "lan"]\n') == [
        "capture.local_networks[1]: expected a string, got 5",
        "capture.local_networks[2]: 'lan' is not a network",
    ]
    assert lines("[capture]\nlocal_networks = []\n") == [
        "capture.local_networks: must list at least 1 item, got 0"
    ]
    assert lines('[capture]\nlocal_networks = "10.0.0.0/8"\n') == [
        'capture.local_networks: expected a list of strings, got "10.0.0.0/8"'
    ]
    # Host bits set are accepted, as the device table accepts them.
    assert lines('[capture]\nlocal_networks = ["10.1.2.3/8"]\n') == []


def test_empty_strings_are_refused():
    assert lines('[capture]\ninterface = ""\n') == [
        "capture.interface: must not be empty (leave the key out instead)"
    ]
    assert lines('[intel]\nfiles = ["a.txt", " "]\n') == [
        "intel.files[1]: must not be empty (leave the key out instead)"
    ]


def test_detector_tables_use_the_registry():
    assert lines("[detectors.port_scan]\nvertical_ports = 5\n") == [
        "detectors.port_scan.vertical_ports: must be between 10 and 65535, got 5"
    ]
    assert lines("[detectors.port_scan]\nports = [22, 70000]\n") == [
        "detectors.port_scan.ports[1]: must be between 1 and 65535, got 70000"
    ]
    assert lines("[detectors.port_scan]\nthreshold = 5\n") == [
        "detectors.port_scan.threshold: unknown key (allowed: enabled, vertical_ports, window, ports)"
    ]
    assert lines("[detectors.nope]\nenabled = true\n") == [
        "detectors.nope: unknown detector (known: port_scan)"
    ]
    assert lines("detectors = 1\n") == ["detectors: expected a table, got 1"]
    assert lines("[detectors]\nport_scan = 1\n") == ["detectors.port_scan: expected a table, got 1"]
    DETECTOR_SETTINGS.clear()
    assert lines("[detectors.port_scan]\n") == [
        "detectors.port_scan: unknown detector (no detectors are registered)"
    ]


def test_every_problem_is_reported_at_once_in_file_order():
    text = """
        [capture]
        local_networks = ["10.0.0.0/8", "x/1", "10.0.0.0/33"]
        [baseline]
        learning_period = "a day"
        min_maturity = -0.1
        [alerts]
        unknown_key = 1
        max_open_alerts = true
        [detectors.port_scan]
        vertical_ports = 5
        window = 0.5
        [surprise]
    """
    expected = [
        "capture.local_networks[1]: 'x/1' is not a network",
        "capture.local_networks[2]: '10.0.0.0/33' is not a network",
        'baseline.learning_period: expected a number, got "a day"',
        "baseline.min_maturity: must be between 0 and 1, got -0.1",
        "alerts.unknown_key: unknown key (allowed: correlation_window, max_open_alerts)",
        "alerts.max_open_alerts: expected an integer, got true",
        "detectors.port_scan.vertical_ports: must be between 10 and 65535, got 5",
        "detectors.port_scan.window: must be between 1 and 3600, got 0.5",
        f"surprise: unknown key (allowed: {TABLES})",
    ]
    assert lines(text) == expected
    with pytest.raises(ConfigError) as caught:
        config_from_dict(tomllib.loads(text))
    message = str(caught.value)
    assert message.splitlines()[0] == "invalid configuration (9 problems):"
    assert message.splitlines()[1:] == [f"  {line}" for line in expected]
    assert [str(i) for i in caught.value.issues] == expected


def test_a_settings_class_own_check_is_reported_against_its_table():
    @dataclass(frozen=True, slots=True)
    class Paired(DetectorSettings):
        low: int = setting(1, minimum=0, maximum=100)
        high: int = setting(2, minimum=0, maximum=100)

        def __post_init__(self) -> None:
            if self.low > self.high:
                raise ValueError("low must not exceed high")

    register_detector_settings("beaconing", Paired)
    assert lines("[detectors.beaconing]\nlow = 50\nhigh = 10\n") == [
        "detectors.beaconing: low must not exceed high"
    ]
