"""The one place that builds the console, for the command line and the tests alike."""

from __future__ import annotations

from pathlib import Path

from heimdal_tui.config import Config
from heimdal_tui.console.app import HeimdalApp
from heimdal_tui.sensor.build import BuiltSession, SensorSpec, build_session
from heimdal_tui.sensor.link import SensorLink


def make_app(
    link: SensorLink,
    config: Config | None = None,
    config_path: Path | None = None,
    theme_dirs: list[Path] | None = None,
    attached: bool = False,
) -> HeimdalApp:
    return HeimdalApp(link, config=config, config_path=config_path, theme_dirs=theme_dirs, attached=attached)


def make_local_console(
    spec: SensorSpec, theme_dirs: list[Path] | None = None
) -> tuple[HeimdalApp, BuiltSession]:
    """A console on an in-process sensor built from ``spec`` (SetupError when it cannot be built).
    The caller starts the session (``built.session.start()``) and cleans up (``built.cleanup()``)."""
    built = build_session(spec)
    app = make_app(built.session, built.config, built.config_path, theme_dirs)
    return app, built
