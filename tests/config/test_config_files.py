"""Reading and writing config.toml: default discovery, syntax errors, exact round trips."""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heimdal_tui.config import (
    AlertsConfig,
    BaselineConfig,
    CaptureConfig,
    Config,
    ConfigError,
    DevicesConfig,
    IntelConfig,
    StoreConfig,
    UIConfig,
    config_to_dict,
    effective_data_dir,
    load_config,
    parse_config,
    paths,
    register_detector_settings,
    save_config,
)
from heimdal_tui.config.model import DETECTOR_SETTINGS
from heimdal_tui.detect.model import DetectorSettings, setting


@dataclass(frozen=True, slots=True)
class ScanSettings(DetectorSettings):
    vertical_ports: int = setting(25, minimum=10, maximum=65535)
    window: float = setting(60.0, minimum=1.0, maximum=3600.0)
    deny: tuple[str, ...] = setting(())


@dataclass(frozen=True, slots=True)
class DnsSettings(DetectorSettings):
    entropy: float = setting(3.5, minimum=0.0, maximum=8.0)


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    saved = dict(DETECTOR_SETTINGS)
    DETECTOR_SETTINGS.clear()
    register_detector_settings("port_scan", ScanSettings)
    register_detector_settings("dns_tunnel", DnsSettings)
    yield
    DETECTOR_SETTINGS.clear()
    DETECTOR_SETTINGS.update(saved)


@pytest.fixture
def default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "xdg" / "heimdal-tui" / "config.toml"
    monkeypatch.setattr(paths, "default_config_path", lambda: path)
    return path


def full_config() -> Config:
    return Config(
        capture=CaptureConfig(interface="eth0", filter="tcp or udp", local_networks=("10.0.0.0/8",)),
        devices=DevicesConfig(max_devices=10, idle_timeout=120.0, max_ips=4),
        baseline=BaselineConfig(learning_period=3600.0, min_maturity=0.25),
        alerts=AlertsConfig(correlation_window=30.0, max_open_alerts=7),
        intel=IntelConfig(files=(Path("/srv/intel/ips.txt"), Path("relative/domains.txt"))),
        store=StoreConfig(data_dir=Path("/var/lib/heimdal")),
        ui=UIConfig(theme="gruvbox"),
        detectors={"port_scan": ScanSettings(vertical_ports=99, deny=("CN", "RU"), enabled=False)},
    )


def test_platform_paths():
    assert paths.default_config_path().name == "config.toml"
    assert paths.default_config_path().parent.name == "heimdal-tui"
    assert paths.default_data_dir().name == "heimdal-tui"


def test_missing_default_file_means_defaults(default_path: Path):
    assert not default_path.exists()
    assert load_config() == Config()
    assert load_config(None) == Config()


def test_default_file_is_read(default_path: Path):
    default_path.parent.mkdir(parents=True)
    default_path.write_text('[ui]\ntheme = "nord"\n')
    assert load_config().ui.theme == "nord"


def test_missing_explicit_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert [str(i) for i in caught.value.issues] == [f"no such file: {tmp_path / 'nope.toml'}"]
    assert str(tmp_path / "nope.toml") in str(caught.value)


def test_unreadable_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"cannot read .*: Is a directory"):
        load_config(tmp_path)


def test_syntax_error_names_line_and_column(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[ui]\ntheme = "nord"\n[alerts\nmax_open_alerts = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (issue,) = caught.value.issues
    assert (issue.line, issue.column) == (3, 8)
    assert str(issue).startswith("line 3, column 8: TOML syntax error: ")
    assert "line 3" in str(caught.value)


def test_syntax_error_at_end_of_document():
    _, issues = parse_config('[ui]\ntheme = "nord')
    (issue,) = issues
    assert issue.line == 2
    assert "TOML syntax error" in issue.message


def test_duplicate_keys_are_a_syntax_error():
    _, issues = parse_config("[ui]\ntheme = 'a'\ntheme = 'b'\n")
    assert len(issues) == 1 and issues[0].line == 3


def test_not_utf8():
    _, issues = parse_config(b'[ui]\ntheme = "\xff"\n')
    assert [str(i) for i in issues] == ["not UTF-8 text (bad byte at offset 14)"]


def test_a_byte_order_mark_is_tolerated():
    config, issues = parse_config('\ufeff[ui]\ntheme = "nord"\n'.encode())
    assert issues == [] and config.ui.theme == "nord"


def test_save_and_load_round_trip_exactly(tmp_path: Path):
    path = tmp_path / "deep" / "er" / "config.toml"
    config = full_config()
    save_config(config, path)
    assert load_config(path) == config
    # And again, from what was loaded: the file is stable.
    first = path.read_bytes()
    save_config(load_config(path), path)
    assert path.read_bytes() == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_saved_file_leaves_out_unset_values(tmp_path: Path):
    path = tmp_path / "config.toml"
    save_config(Config(), path)
    data = tomllib.loads(path.read_text())
    assert "interface" not in data["capture"]
    assert data["store"] == {}
    assert "detectors" not in data
    assert load_config(path) == Config()


def test_save_keeps_permissions_of_an_existing_file(tmp_path: Path):
    path = tmp_path / "config.toml"
    save_config(Config(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    save_config(full_config(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_save_refuses_what_load_would_refuse(tmp_path: Path):
    path = tmp_path / "config.toml"
    save_config(Config(), path)
    before = path.read_bytes()
    bad = dataclasses.replace(Config(), baseline=BaselineConfig(learning_period=-1.0))
    with pytest.raises(ConfigError, match=r"baseline.learning_period: must be greater than 0, got -1.0"):
        save_config(bad, path)
    assert path.read_bytes() == before


def test_config_to_dict_can_fill_every_detector():
    data = config_to_dict(full_config(), all_detectors=True)
    assert data["detectors"]["port_scan"] == {
        "enabled": False,
        "vertical_ports": 99,
        "window": 60.0,
        "deny": ["CN", "RU"],
    }
    assert data["detectors"]["dns_tunnel"] == {"enabled": True, "entropy": 3.5}
    assert "dns_tunnel" not in config_to_dict(full_config())["detectors"]


def test_effective_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(paths, "default_data_dir", lambda: tmp_path / "data")
    assert effective_data_dir(Config()) == tmp_path / "data"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    configured = dataclasses.replace(Config(), store=StoreConfig(data_dir=Path("~/heimdal")))
    assert effective_data_dir(configured) == tmp_path / "home" / "heimdal"


_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12).filter(str.strip)
_networks = st.lists(
    st.sampled_from(["10.0.0.0/8", "192.168.1.0/24", "fd00::/8", "100.64.0.0/10", "::1/128"]),
    min_size=1,
    max_size=4,
).map(tuple)
_configs = st.builds(
    Config,
    capture=st.builds(
        CaptureConfig,
        interface=st.none() | _text,
        filter=st.none() | _text,
        local_networks=_networks,
    ),
    devices=st.builds(
        DevicesConfig,
        max_devices=st.integers(1, 1_000_000),
        idle_timeout=st.floats(60.0, 366 * 86400.0),
    ),
    baseline=st.builds(
        BaselineConfig,
        learning_period=st.floats(1e-6, 1e9),
        min_maturity=st.floats(0.0, 1.0),
    ),
    alerts=st.builds(AlertsConfig, correlation_window=st.floats(0.0, 86400.0)),
    intel=st.builds(IntelConfig, files=st.lists(_text.map(Path), max_size=3).map(tuple)),
    store=st.builds(StoreConfig, data_dir=st.none() | _text.map(Path)),
    ui=st.builds(UIConfig, theme=_text),
    detectors=st.dictionaries(
        st.just("dns_tunnel"),
        st.builds(DnsSettings, enabled=st.booleans(), entropy=st.floats(0.0, 8.0)),
    ),
)


@settings(max_examples=60, deadline=None)
@given(config=_configs)
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, config: Config):
    path = tmp_path_factory.mktemp("rt") / "config.toml"
    save_config(config, path)
    assert load_config(path) == config
