"""The JSON log: one object per line with extra fields, secrets redacted, escapes neutralised,
size rotation with a bounded number of backups, stderr for the journal, reconfiguration."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from heimdal_tui.config.model import LoggingConfig
from heimdal_tui.service.logs import (
    LogSetupError,
    configure_logging,
    log_file,
    register_secret,
    stop_logging,
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    stop_logging()
    root.setLevel(level)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_lines_are_json_with_extra_fields(tmp_path: Path):
    setup = configure_logging(LoggingConfig(), tmp_path)
    assert setup.path == tmp_path / "logs" / "heimdal.log" == log_file(LoggingConfig(), tmp_path)
    log = logging.getLogger("heimdal_tui.test")
    log.info("store %s degraded", "heimdal.db", extra={"pending": 3, "reason": "disk full"})
    log.debug("not at info")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("retention run failed")
    first, second = lines(setup.path)
    assert first["level"] == "info" and first["logger"] == "heimdal_tui.test"
    assert first["msg"] == "store heimdal.db degraded"
    assert first["pending"] == 3 and first["reason"] == "disk full"
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["level"] == "error" and "RuntimeError: boom" in second["exc"]
    assert setup.path.stat().st_mode & 0o777 == 0o640


def test_secrets_are_redacted_and_escapes_neutralised(tmp_path: Path):
    setup = configure_logging(LoggingConfig(), tmp_path)
    assert setup.path is not None
    register_secret("s3cr3t-key-value")
    log = logging.getLogger("heimdal_tui.test")
    log.warning(
        "asgard refused key s3cr3t-key-value for host \x1b[31mevil\x1b[0m",
        extra={"api_key": "anything", "headers": {"Authorization": "Bearer x", "Accept": "json"}},
    )
    (entry,) = lines(setup.path)
    raw = setup.path.read_text()
    assert "s3cr3t-key-value" not in raw and "\x1b" not in raw
    assert "[redacted]" in entry["msg"] and "\\x1b[31mevil" in entry["msg"]
    assert entry["api_key"] == "[redacted]"
    assert entry["headers"] == {"Authorization": "[redacted]", "Accept": "json"}


def test_rotation_keeps_the_configured_number_of_backups(tmp_path: Path):
    config = LoggingConfig(max_file_mb=0.1, backups=2)
    setup = configure_logging(config, tmp_path)
    log = logging.getLogger("heimdal_tui.test")
    for i in range(2000):
        log.info("line %d %s", i, "x" * 100)
    assert setup.path is not None
    names = sorted(p.name for p in setup.path.parent.iterdir())
    assert names == ["heimdal.log", "heimdal.log.1", "heimdal.log.2"]
    for path in setup.path.parent.iterdir():
        assert path.stat().st_size <= 0.1 * 1024 * 1024 + 200
    assert lines(setup.path)[-1]["msg"].startswith("line 1999 ")


def test_stderr_destination_level_and_reconfiguration(tmp_path: Path):
    stream = io.StringIO()
    configure_logging(LoggingConfig(destination="stderr", level="warning"), tmp_path, stream=stream)
    log = logging.getLogger("heimdal_tui.test")
    log.info("hidden")
    log.warning("shown")
    # Configuring again (SIGHUP) replaces the handler instead of adding a second one.
    configure_logging(LoggingConfig(destination="stderr", level="debug"), tmp_path, stream=stream)
    log.debug("now shown")
    messages = [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]
    assert messages == ["shown", "now shown"]
    assert not (tmp_path / "logs").exists()
    # Noisy libraries stay at warning even at debug.
    assert logging.getLogger("httpx").level == logging.WARNING


def test_an_unwritable_log_path_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config = dataclasses.replace(LoggingConfig(), file=blocker / "heimdal.log")
    with pytest.raises(LogSetupError, match=r"cannot write the log file .*not-a-dir/heimdal\.log"):
        configure_logging(config, tmp_path)
