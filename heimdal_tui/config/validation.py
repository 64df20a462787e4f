"""Turning parsed TOML into a :class:`Config`, reporting every problem with its key path."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from heimdal_tui.config.errors import ConfigError, ConfigIssue
from heimdal_tui.config.fields import check_value, field_specs, key_path, show
from heimdal_tui.config.model import DETECTOR_SETTINGS, DETECTORS_TABLE, SECTIONS, Config
from heimdal_tui.detect.model import DetectorSettings

T = TypeVar("T")


def validate(data: Mapping[str, Any]) -> list[ConfigIssue]:
    """Every problem in ``data`` (a parsed TOML document), in file order; empty when it is valid."""
    return parse_data(data)[1]


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """The configuration ``data`` describes, defaults filled in; ConfigError listing every problem."""
    config, issues = parse_data(data)
    if issues:
        raise ConfigError(issues)
    return config


def parse_data(data: Mapping[str, Any]) -> tuple[Config, list[ConfigIssue]]:
    """The configuration ``data`` describes (valid parts applied, invalid tables at their
    defaults) and every problem found."""
    issues: list[ConfigIssue] = []
    if not isinstance(data, Mapping):
        return Config(), [ConfigIssue("", f"expected a table of settings, got {show(data)}")]
    sections: dict[str, Any] = {}
    detectors: dict[str, DetectorSettings] = {}
    allowed = [*SECTIONS, DETECTORS_TABLE]
    for name, raw in data.items():
        path = key_path("", name)
        if name == DETECTORS_TABLE:
            if isinstance(raw, Mapping):
                detectors = _parse_detectors(raw, issues)
            else:
                issues.append(ConfigIssue(path, f"expected a table, got {show(raw)}"))
        elif name in SECTIONS:
            if isinstance(raw, Mapping):
                sections[name] = _parse_table(path, raw, SECTIONS[name], issues)
            else:
                issues.append(ConfigIssue(path, f"expected a table, got {show(raw)}"))
        else:
            issues.append(ConfigIssue(path, f"unknown key (allowed: {', '.join(allowed)})"))
    return Config(**sections, detectors=detectors), issues


def _parse_detectors(raw: Mapping[str, Any], issues: list[ConfigIssue]) -> dict[str, DetectorSettings]:
    out: dict[str, DetectorSettings] = {}
    for kind, table in raw.items():
        path = key_path(DETECTORS_TABLE, kind)
        settings_type = DETECTOR_SETTINGS.get(kind)
        if settings_type is None:
            issues.append(ConfigIssue(path, f"unknown detector ({_known_detectors()})"))
        elif not isinstance(table, Mapping):
            issues.append(ConfigIssue(path, f"expected a table, got {show(table)}"))
        else:
            out[kind] = _parse_table(path, table, settings_type, issues)
    return out


def _known_detectors() -> str:
    if not DETECTOR_SETTINGS:
        return "no detectors are registered"
    return "known: " + ", ".join(DETECTOR_SETTINGS)


def _parse_table(prefix: str, raw: Mapping[str, Any], cls: type[T], issues: list[ConfigIssue]) -> T:
    specs = field_specs(cls)
    values: dict[str, Any] = {}
    clean = True
    for key, value in raw.items():
        path = key_path(prefix, key)
        spec = specs.get(key)
        if spec is None:
            issues.append(ConfigIssue(path, f"unknown key (allowed: {', '.join(specs)})"))
            clean = False
            continue
        converted, problems = check_value(path, value, spec)
        if problems:
            issues.extend(problems)
            clean = False
        else:
            values[key] = converted
    if not clean:
        return cls()
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a settings class's own cross-field checks
        issues.append(ConfigIssue(prefix, str(exc)))
        return cls()


# -- detector settings --------------------------------------------------------------------------------
def detector_settings(config: Config, kind: str) -> DetectorSettings:
    """The settings of the ``kind`` detector: the configured table, else the registered defaults.

    KeyError when ``kind`` is neither configured nor registered.
    """
    configured = config.detectors.get(kind)
    if configured is not None:
        return configured
    settings_type = DETECTOR_SETTINGS.get(kind)
    if settings_type is None:
        raise KeyError(f"no detector settings registered for {kind!r}")
    return settings_type()


def with_detector_setting(config: Config, kind: str, key: str, value: Any) -> Config:
    """A copy of ``config`` with ``detectors.<kind>.<key>`` set to ``value``, checked exactly as the
    file would be (type and range). ConfigError names the key and the allowed values otherwise."""
    prefix = key_path(DETECTORS_TABLE, kind)
    settings_type = DETECTOR_SETTINGS.get(kind)
    if settings_type is None:
        raise ConfigError([ConfigIssue(prefix, f"unknown detector ({_known_detectors()})")])
    specs = field_specs(settings_type)
    path = key_path(prefix, key)
    spec = specs.get(key)
    if spec is None:
        raise ConfigError([ConfigIssue(path, f"unknown key (allowed: {', '.join(specs)})")])
    converted, problems = check_value(path, value, spec)
    if problems:
        allowed = spec.describe_range()
        if allowed:
            problems = [
                p
                if allowed in p.message
                else dataclasses.replace(p, message=f"{p.message} (allowed: {allowed})")
                for p in problems
            ]
        raise ConfigError(problems)
    current = config.detectors.get(kind)
    if not isinstance(current, settings_type):
        current = settings_type()
    try:
        updated = dataclasses.replace(current, **{key: converted})
    except (TypeError, ValueError) as exc:
        raise ConfigError([ConfigIssue(path, str(exc))]) from exc
    return dataclasses.replace(config, detectors={**config.detectors, kind: updated})
