"""`heimdal-tui config validate|path|show`, through a parser built the way main.py builds it."""

from __future__ import annotations

import argparse
import io
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heimdal_tui.cli import config_cmd
from heimdal_tui.config import Config, config_to_dict, paths, register_detector_settings, validate
from heimdal_tui.config.model import DETECTOR_SETTINGS
from heimdal_tui.detect.model import DetectorSettings, setting


@dataclass(frozen=True, slots=True)
class ScanSettings(DetectorSettings):
    vertical_ports: int = setting(25, minimum=10, maximum=65535)


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    saved = dict(DETECTOR_SETTINGS)
    DETECTOR_SETTINGS.clear()
    register_detector_settings("port_scan", ScanSettings)
    yield
    DETECTOR_SETTINGS.clear()
    DETECTOR_SETTINGS.update(saved)


@pytest.fixture
def default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "xdg" / "config.toml"
    monkeypatch.setattr(paths, "default_config_path", lambda: path)
    return path


def run(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="heimdal-tui")
    sub = parser.add_subparsers(dest="command")
    config_cmd.add_arguments(sub)
    args = parser.parse_args(list(argv))
    assert args.command == "config"
    out, err = io.StringIO(), io.StringIO()
    code = config_cmd.run(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_validate_ok(tmp_path: Path):
    path = write(tmp_path / "c.toml", "[detectors.port_scan]\nvertical_ports = 30\n")
    assert run("config", "validate", "--config", str(path)) == (0, f"config OK: {path}\n", "")


def test_validate_absent_default_file_is_ok(default_path: Path):
    code, out, _ = run("config", "validate")
    assert code == 0
    assert out == f"config OK: {default_path} (no file: built-in defaults)\n"


def test_validate_lists_every_problem_one_per_line(default_path: Path):
    write(
        default_path,
        '[baseline]\nlearning_period = "a day"\n[alerts]\nunknown_key = 1\n'
        "[detectors.port_scan]\nvertical_ports = 5\n",
    )
    code, out, err = run("config", "validate")
    assert code == 1
    assert out.splitlines() == [
        f'{default_path}: baseline.learning_period: expected a number, got "a day"',
        f"{default_path}: alerts.unknown_key: unknown key (allowed: correlation_window, max_open_alerts)",
        f"{default_path}: detectors.port_scan.vertical_ports: must be between 10 and 65535, got 5",
    ]
    assert err == f"heimdal-tui config validate: {default_path}: 3 problems\n"


def test_validate_syntax_error_and_missing_file(tmp_path: Path):
    path = write(tmp_path / "c.toml", "[ui]\ntheme = \n")
    code, out, _ = run("config", "validate", "--config", str(path))
    assert code == 1
    assert out.startswith(f"{path}: line 2, column 9: TOML syntax error")
    code, out, _ = run("config", "validate", "--config", str(tmp_path / "missing.toml"))
    assert code == 1
    assert out == f"{tmp_path / 'missing.toml'}: no such file: {tmp_path / 'missing.toml'}\n"


def test_path_prints_the_default_path(default_path: Path):
    assert run("config", "path") == (0, f"{default_path}\n", "")


def test_show_prints_effective_config_with_defaults(default_path: Path):
    write(default_path, '[ui]\ntheme = "nord"\n')
    code, out, err = run("config", "show")
    assert (code, err) == (0, "")
    data = tomllib.loads(out)
    assert validate(data) == []
    assert data["ui"] == {"theme": "nord"}
    assert data["baseline"] == {"learning_period": 86400.0, "min_maturity": 1.0}
    assert data["detectors"] == {"port_scan": {"enabled": True, "vertical_ports": 25}}
    expected = config_to_dict(Config(), all_detectors=True)
    expected["ui"] = {"theme": "nord"}
    assert data == expected


def test_show_invalid_config_fails_with_problems_on_stderr(tmp_path: Path):
    path = write(tmp_path / "c.toml", "[ui]\ncolour = 1\n")
    code, out, err = run("config", "show", "--config", str(path))
    assert (code, out) == (1, "")
    assert f"{path}: ui.colour: unknown key (allowed: theme)" in err


def test_an_action_is_required():
    with pytest.raises(SystemExit) as caught:
        run("config")
    assert caught.value.code == 2
