"""Reading and writing ``config.toml``: tomllib in, tomli-w out, validated both ways."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from heimdal_tui.config import paths
from heimdal_tui.config.errors import ConfigError, ConfigIssue
from heimdal_tui.config.fields import field_specs
from heimdal_tui.config.model import DETECTOR_SETTINGS, DETECTORS_TABLE, SECTIONS, Config
from heimdal_tui.config.validation import parse_data, validate

HEADER = "# Heimdal TUI configuration. Check it with `heimdal-tui config validate`.\n"

_AT_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def load_config(path: Path | None = None) -> Config:
    """The configuration in ``path`` (None: the default path), defaults filled in.

    A missing default file means the defaults; a missing explicit file, an unreadable one, a TOML
    syntax error or any invalid setting raise ConfigError listing every problem found.
    """
    explicit = path is not None
    target = path if path is not None else paths.default_config_path()
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError([ConfigIssue("", f"no such file: {target}")], target) from None
        return Config()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigIssue("", f"cannot read {target}: {reason}")], target) from None
    config, issues = parse_config(raw)
    if issues:
        raise ConfigError(issues, target)
    return config


def parse_config(raw: bytes | str) -> tuple[Config, list[ConfigIssue]]:
    """The configuration in TOML text and every problem in it (a syntax error is the only one
    reported when there is one: nothing after it can be read)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return Config(), [ConfigIssue("", f"not UTF-8 text (bad byte at offset {exc.start})")]
    else:
        text = raw
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Config(), [_syntax_issue(exc, text)]
    return parse_data(data)


def _syntax_issue(exc: tomllib.TOMLDecodeError, text: str) -> ConfigIssue:
    message = str(exc)
    line = getattr(exc, "lineno", None)  # Python 3.14 and later
    column = getattr(exc, "colno", None)
    found = _AT_POSITION.search(message)
    if found:
        line, column = int(found.group(1)), int(found.group(2))
        message = message[: found.start()]
    elif _AT_END.search(message):
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
        message = _AT_END.sub("", message)
    if line is None or column is None:
        line, column = 1, 1
    return ConfigIssue("", f"TOML syntax error: {message}", line=line, column=column)


def save_config(config: Config, path: Path) -> None:
    """Write ``config`` to ``path`` atomically (a temporary file renamed over it), creating the
    directory. An existing file keeps its permissions (a new one is private), not its comments.
    ConfigError when ``config`` holds values a file could not (those :func:`load_config` refuses)."""
    data = config_to_dict(config)
    issues = validate(data)
    if issues:
        raise ConfigError(issues, path)
    payload = (HEADER + tomli_w.dumps(data)).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; not every platform or file system allows opening a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def config_to_dict(config: Config, *, all_detectors: bool = False) -> dict[str, Any]:
    """``config`` as TOML-ready data (lists, strings, numbers; unset values left out).

    With ``all_detectors`` every registered detector gets its table (defaults where the
    configuration has none), as ``config show`` prints it.
    """
    out: dict[str, Any] = {name: _table(getattr(config, name)) for name in SECTIONS}
    detectors = {kind: _table(settings) for kind, settings in config.detectors.items()}
    if all_detectors:
        for kind, settings_type in DETECTOR_SETTINGS.items():
            detectors.setdefault(kind, _table(settings_type()))
    if detectors:
        out[DETECTORS_TABLE] = detectors
    return out


def config_to_toml(config: Config, *, all_detectors: bool = False) -> str:
    return tomli_w.dumps(config_to_dict(config, all_detectors=all_detectors))


def _table(obj: Any) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name in field_specs(type(obj)):
        value = getattr(obj, name)
        if value is not None:
            table[name] = _plain(value)
    return table


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def effective_data_dir(config: Config) -> Path:
    """Where the store lives: ``[store] data_dir`` (``~`` expanded), else the platform default."""
    if config.store.data_dir is not None:
        return config.store.data_dir.expanduser()
    return paths.default_data_dir()
