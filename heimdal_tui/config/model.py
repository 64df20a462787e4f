"""The whole configuration as frozen dataclasses, and the registry of detector settings.

One dataclass per TOML table. Every field has a default, so an empty (or absent) file is a working
configuration; the allowed values live in each field's metadata (see :func:`fields.option`) and are
what validation, ``config show`` and the console's settings screens read.

``[detectors.<kind>]`` tables are checked against the settings class registered for that alert kind
(:func:`register_detector_settings`); each is optional, and an absent one means the defaults.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from heimdal_tui.config.fields import field_specs, option
from heimdal_tui.detect.model import DetectorSettings
from heimdal_tui.devices.locality import DEFAULT_LOCAL_NETWORKS
from heimdal_tui.devices.table import DeviceLimits

_DAY = 86_400.0
_LIMITS = DeviceLimits()


def _network_problem(text: str) -> str | None:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{text!r} is not a network"
    return None


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    interface: str | None = option(
        None, nonempty=True, help="interface to capture on (absent: the one carrying the default route)"
    )
    filter: str | None = option(None, nonempty=True, help="BPF capture filter (absent: everything)")
    local_networks: tuple[str, ...] = option(
        DEFAULT_LOCAL_NETWORKS,
        min_items=1,
        item_check=_network_problem,
        help="networks whose hosts are devices (CIDR); the rest are remote peers",
    )


@dataclass(frozen=True, slots=True)
class DevicesConfig:
    """Memory bounds of the device table (see :class:`DeviceLimits`)."""

    max_devices: int = option(
        _LIMITS.max_devices, minimum=1, maximum=1_000_000, help="devices tracked at once"
    )
    idle_timeout: float = option(
        _LIMITS.idle_timeout,
        minimum=60.0,
        maximum=366 * _DAY,
        help="seconds of silence after which a device is forgotten",
    )
    max_peers: int = option(_LIMITS.max_peers, minimum=1, maximum=1_000_000, help="peers kept per device")
    max_ports: int = option(_LIMITS.max_ports, minimum=1, maximum=1_000_000, help="ports kept per device")
    max_names: int = option(
        _LIMITS.max_names, minimum=1, maximum=1_000_000, help="DNS/TLS names kept per device"
    )
    max_ips: int = option(_LIMITS.max_ips, minimum=1, maximum=65_536, help="addresses kept per device")
    total_peers: int = option(
        _LIMITS.total_peers, minimum=8, maximum=100_000_000, help="peers kept over all devices"
    )
    total_ports: int = option(
        _LIMITS.total_ports, minimum=8, maximum=100_000_000, help="ports kept over all devices"
    )
    total_names: int = option(
        _LIMITS.total_names, minimum=8, maximum=100_000_000, help="DNS/TLS names kept over all devices"
    )

    def limits(self) -> DeviceLimits:
        """These bounds as the device table takes them (its other limits keep their defaults)."""
        return dataclasses.replace(
            _LIMITS,
            max_devices=self.max_devices,
            idle_timeout=self.idle_timeout,
            max_peers=self.max_peers,
            max_ports=self.max_ports,
            max_names=self.max_names,
            max_ips=self.max_ips,
            total_peers=self.total_peers,
            total_ports=self.total_ports,
            total_names=self.total_names,
        )


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    learning_period: float = option(
        _DAY, above=0.0, help="seconds of live traffic learned before behaviour alerts start"
    )
    min_maturity: float = option(
        1.0, minimum=0.0, maximum=1.0, help="fraction of the learning period a device needs (0..1)"
    )


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    correlation_window: float = option(
        600.0,
        minimum=0.0,
        maximum=30 * _DAY,
        help="seconds within which repeats fold into one alert",
    )
    max_open_alerts: int = option(10_000, minimum=1, maximum=1_000_000, help="alerts kept in memory")


@dataclass(frozen=True, slots=True)
class IntelConfig:
    files: tuple[Path, ...] = option(
        (), nonempty=True, help="threat-intelligence indicator files (addresses, networks, domains)"
    )


@dataclass(frozen=True, slots=True)
class StoreConfig:
    data_dir: Path | None = option(  # noqa: RUF009 (option() is a dataclasses.field)
        None, nonempty=True, help="directory of the SQLite store (absent: the platform's data dir)"
    )


@dataclass(frozen=True, slots=True)
class UIConfig:
    theme: str = option("heimdal-dark", nonempty=True, help="console theme")


def asgard_url_problem(text: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        return f"{text!r} is not a URL ({exc})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{text!r} is not an https:// URL"
    if parts.username is not None or parts.password is not None:
        return "the URL must not hold credentials (put the API key in api_key_file)"
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        return f"{text!r}: plain http is only allowed to this machine (localhost); use https"
    return None


def _severity_problem(text: str) -> str | None:
    if text not in _SEVERITIES:
        return f"{text!r} is not a severity (one of {', '.join(_SEVERITIES)})"
    return None


_SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class AsgardConfig:
    """The Asgard link (see docs/asgard-api.md). Without a URL (here or in HEIMDAL_ASGARD_URL) the
    link is off and nothing is queued."""

    url: str | None = option(
        None, nonempty=True, item_check=asgard_url_problem, help="Asgard API base URL (https://...)"
    )
    api_key_file: Path | None = option(  # noqa: RUF009 (option() is a dataclasses.field)
        None, nonempty=True, help="file holding the API key (mode 0600); HEIMDAL_ASGARD_API_KEY wins"
    )
    ca_bundle: Path | None = option(  # noqa: RUF009
        None, nonempty=True, help="PEM file of CA certificates to trust instead of the system's"
    )
    connect_timeout: float = option(10.0, above=0.0, maximum=300.0, help="seconds to connect")
    read_timeout: float = option(30.0, above=0.0, maximum=600.0, help="seconds to wait for a response")
    alert_severities: tuple[str, ...] = option(
        ("medium", "high", "critical"),
        item_check=_severity_problem,
        help="alert severities sent to Asgard (an empty list sends no alerts)",
    )
    device_summaries: bool = option(True, help="send anonymized device summaries")
    device_summary_interval: float = option(
        900.0, minimum=10.0, maximum=7 * _DAY, help="seconds between device summaries"
    )
    names: Literal["registered_domain", "drop"] = option(
        "registered_domain",
        help="DNS names sent: the registered domain of external names only, or none",
    )
    ip_detail: Literal["country", "region"] = option(
        "country", help="what a public address becomes: its country, or only its world region"
    )
    batch_size: int = option(100, minimum=1, maximum=1000, help="items per request")
    queue_max_items: int = option(
        10_000, minimum=10, maximum=1_000_000, help="undelivered items kept (then lowest priority, oldest go)"
    )
    backoff_initial: float = option(2.0, above=0.0, maximum=3600.0, help="first retry delay, seconds")
    backoff_max: float = option(300.0, above=0.0, maximum=86_400.0, help="longest retry delay, seconds")
    intelligence_interval: float = option(
        3600.0, minimum=10.0, maximum=7 * _DAY, help="seconds between intelligence checks"
    )

    def __post_init__(self) -> None:
        if self.backoff_max < self.backoff_initial:
            raise ValueError(
                f"backoff_max ({self.backoff_max:g}) must be at least backoff_initial ({self.backoff_initial:g})"
            )


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """The JSON log (heimdal_tui.service.logs): one object per line, rotated by size."""

    level: Literal["debug", "info", "warning", "error"] = option("info", help="lowest level logged")
    destination: Literal["file", "stderr"] = option(
        "file", help="a rotated file, or stderr (under systemd: the journal)"
    )
    file: Path | None = option(  # noqa: RUF009 (option() is a dataclasses.field)
        None, nonempty=True, help="log file (absent: <data_dir>/logs/heimdal.log)"
    )
    max_file_mb: float = option(
        10.0, minimum=0.1, maximum=1024.0, help="size in MiB at which the file is rotated"
    )
    backups: int = option(3, minimum=1, maximum=100, help="rotated files kept beside the current one")


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long the store keeps what it no longer needs, and how big it may grow (an SD card)."""

    closed_alert_days: float = option(
        90.0, above=0.0, maximum=36_500.0, help="days a closed (resolved, false-positive) alert is kept"
    )
    drift_days: float = option(30.0, above=0.0, maximum=36_500.0, help="days of drift history kept")
    audit_days: float = option(
        365.0, above=0.0, maximum=36_500.0, help="days of audit trail (who changed what) kept"
    )
    delivered_sync_days: float = option(
        7.0, above=0.0, maximum=36_500.0, help="days an item delivered to Asgard stays in the queue"
    )
    max_store_mb: float = option(
        512.0, minimum=8.0, maximum=1_048_576.0, help="store size cap in MiB (then oldest closed data goes)"
    )
    interval: float = option(600.0, minimum=10.0, maximum=86_400.0, help="seconds between retention runs")


# The tables of a configuration file, in the order `config show` writes them.
SECTIONS: dict[str, type] = {
    "capture": CaptureConfig,
    "devices": DevicesConfig,
    "baseline": BaselineConfig,
    "alerts": AlertsConfig,
    "intel": IntelConfig,
    "store": StoreConfig,
    "ui": UIConfig,
    "asgard": AsgardConfig,
    "logging": LoggingConfig,
    "retention": RetentionConfig,
}
DETECTORS_TABLE = "detectors"


@dataclass(frozen=True)
class Config:
    """A whole, valid configuration. ``detectors`` holds the detector tables the file gave (by
    alert kind); :func:`heimdal_tui.config.detector_settings` fills in the rest with defaults.
    Treat it as immutable: derive changed copies with ``dataclasses.replace`` or
    :func:`heimdal_tui.config.with_detector_setting`."""

    capture: CaptureConfig = field(default_factory=CaptureConfig)
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    intel: IntelConfig = field(default_factory=IntelConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    asgard: AsgardConfig = field(default_factory=AsgardConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    detectors: dict[str, DetectorSettings] = field(default_factory=dict)


# -- detector settings registry ---------------------------------------------------------------------
DETECTOR_SETTINGS: dict[str, type[DetectorSettings]] = {}


def register_detector_settings(kind: str, settings_type: type[DetectorSettings]) -> None:
    """Declare the settings of the detector raising alerts of ``kind`` (its ``[detectors.<kind>]``
    table). Registering a kind again replaces its settings type.

    Raises TypeError when ``settings_type`` is not a DetectorSettings dataclass whose fields all have
    defaults and types a TOML file can hold.
    """
    if not (isinstance(settings_type, type) and issubclass(settings_type, DetectorSettings)):
        raise TypeError(f"{settings_type!r} is not a DetectorSettings subclass")
    field_specs(settings_type)  # raises TypeError for an unconfigurable field
    DETECTOR_SETTINGS[kind] = settings_type


def registered_detectors() -> dict[str, type[DetectorSettings]]:
    """The registered detector kinds and their settings types, in registration order."""
    return dict(DETECTOR_SETTINGS)
