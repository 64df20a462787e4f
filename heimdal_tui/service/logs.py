"""Structured logs: one JSON object per line (``ts``, ``level``, ``logger``, ``msg``, then any extra
fields), to a size-rotated file or to stderr (which systemd hands to the journal).

Secrets never reach the log: extra fields whose names say they hold one (token, password, api key,
authorization...) are written as ``"[redacted]"``, and so are the values of those the caller
registers (the Asgard API key once it is read). Strings from the network were escaped when they
entered the engine (heimdal_tui.common.text); JSON escapes control characters again here, and
:func:`safe_text` is applied to every string so a log line can never carry a terminal escape.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import logging.handlers
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from heimdal_tui.common.text import safe_text
from heimdal_tui.config.model import LoggingConfig

LOG_DIRNAME = "logs"
LOG_FILENAME = "heimdal.log"
REDACTED = "[redacted]"
# Log lines carry messages, not documents: longer strings are cut.
_MAX_STRING = 4096

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_SECRET_NAME = re.compile(r"(?i)(passw|secret|token|api[_-]?key|authori[sz]ation|cookie|credential)")
# Libraries whose INFO/DEBUG lines are noise for an operator (and httpx's name full URLs).
_QUIET_LIBRARIES = ("httpx", "httpcore", "asyncio", "urllib3", "scapy.runtime", "textual")
_SECRET_VALUES: set[str] = set()


def register_secret(value: str) -> None:
    """Never log ``value`` (e.g. an API key read from its file), wherever it appears."""
    if len(value) >= 6:  # a short value would redact ordinary words
        _SECRET_VALUES.add(value)


def _scrub(text: str) -> str:
    for secret in _SECRET_VALUES:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return safe_text(text, limit=_MAX_STRING)


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of an extra field's value, with strings made safe."""
    if isinstance(value, str):
        return _scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < 4 and isinstance(value, dict):
        return {
            str(k): (REDACTED if _SECRET_NAME.search(str(k)) else _plain(v, depth + 1))
            for k, v in value.items()
        }
    if depth < 4 and isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in list(value)[:256]]
    if isinstance(value, os.PathLike):
        return _scrub(os.fspath(value))
    return _scrub(repr(value))


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        out: dict[str, Any] = {
            "ts": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _RECORD_FIELDS or key.startswith("_") or key in out:
                continue
            out[key] = REDACTED if _SECRET_NAME.search(key) else _plain(value)
        if record.exc_info and record.exc_info[0] is not None:
            out["exc"] = _scrub("".join(traceback.format_exception(*record.exc_info)))
        elif record.exc_text:
            out["exc"] = _scrub(record.exc_text)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class LogSetup:
    """Where logs go: ``path`` for a file, None for stderr."""

    level: str
    path: Path | None

    def describe(self) -> str:
        return f"{self.level} and above to {self.path if self.path is not None else 'stderr'}"


class LogSetupError(Exception):
    """The log file cannot be opened (the message says why)."""


_HANDLER_NAME = "heimdal-json"


def log_file(config: LoggingConfig, data_dir: Path) -> Path:
    if config.file is not None:
        return config.file.expanduser()
    return Path(data_dir) / LOG_DIRNAME / LOG_FILENAME


def configure_logging(config: LoggingConfig, data_dir: Path, *, stream: TextIO | None = None) -> LogSetup:
    """Send every log record at ``config.level`` and above to the configured destination, as JSON.

    Calling it again (a reloaded configuration) replaces what the previous call installed. The log
    directory is created (mode 0750). LogSetupError when the file cannot be opened; logging is then
    left as it was.
    """
    level = getattr(logging, config.level.upper())
    handler: logging.Handler
    path: Path | None = None
    if config.destination == "stderr":
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    else:
        path = log_file(config, data_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            handler = logging.handlers.RotatingFileHandler(
                path,
                maxBytes=max(1, int(config.max_file_mb * 1024 * 1024)),
                backupCount=config.backups,
                encoding="utf-8",
            )
        except OSError as exc:
            raise LogSetupError(f"cannot write the log file {path}: {exc.strerror or exc}") from exc
        # The log may name devices and peers of the LAN: readable by the service's group only.
        with contextlib.suppress(OSError):
            os.chmod(path, 0o640)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return LogSetup(level=config.level, path=path)


def stop_logging() -> None:
    """Remove (and close) what :func:`configure_logging` installed."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
