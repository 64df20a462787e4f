"""The one place that builds the console, for the command line and the tests alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from heimdal_tui.config import Config
from heimdal_tui.console.app import HeimdalApp
from heimdal_tui.sensor.build import BuiltSession, SensorSpec, build_session
from heimdal_tui.sensor.link import SensorLink
from heimdal_tui.sensor.session import SessionOptions

# In-process with the console, the pipeline works in small pieces and leaves the interpreter free
# part of the time while a replay runs flat out, so the operator's keys are answered at once
# (a replay at "max" runs somewhat slower in the console than in `analyze` or the daemon).
CONSOLE_OPTIONS = SessionOptions(gulp_frames=4096, busy_share=0.6)


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
    if spec.options is None:
        spec = dataclasses.replace(spec, options=CONSOLE_OPTIONS)
    built = build_session(spec)
    app = make_app(built.session, built.config, built.config_path, theme_dirs)
    return app, built
