"""Fixtures for console tests: a real sensor session replaying a real capture, and the console on it.

The session runs the whole engine (pipeline, detection, a SQLite store in a temporary directory)
over the bundled sample, as fast as it can. Snapshots need deterministic pixels: the session's clock
is frozen (its rates and their history then depend on the frames alone, and it publishes when the
replay ends and after each command rather than on a timer), and :func:`settle` waits until the
replay has finished and the console holds its results, then clears the toasts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from heimdal_tui.console.app import HeimdalApp
from heimdal_tui.console.factory import make_local_console
from heimdal_tui.sensor.build import BuiltSession, SensorSpec

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
INCIDENTS = SAMPLES / "home_lan_incidents.pcap"


@dataclasses.dataclass
class Console:
    app: HeimdalApp
    built: BuiltSession
    config_path: Path


@pytest.fixture
def make_console(tmp_path: Path) -> Iterator[Callable[..., Console]]:
    made: list[Console] = []

    def make(
        capture: Path = INCIDENTS, config_text: str = "", theme_dirs: list[Path] | None = None
    ) -> Console:
        config = tmp_path / f"config{len(made)}.toml"
        config.write_text(config_text)
        spec = SensorSpec(
            replay=(str(capture),),
            speed=None,
            config_path=config,
            data_dir=tmp_path / "data",
            clock=lambda: 0.0,
        )
        app, built = make_local_console(spec, theme_dirs=theme_dirs)
        built.session.start()
        console = Console(app, built, config)
        made.append(console)
        return console

    yield make
    for console in made:
        console.built.cleanup()


async def settle(app: HeimdalApp, pilot, timeout: float = 30.0) -> None:
    """Wait for the replay to finish and the console to hold its results; freeze wall-clock rates."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = app.state
        status = state.status
        if (
            status is not None
            and status.state == "finished"
            and state.alerts
            and state.devices
            and state.drift
        ):
            break
        if loop.time() > deadline:
            raise AssertionError(f"the console never got the replay's results (status: {status})")
        await asyncio.sleep(0.05)
    await pilot.pause(0.3)
    app.clear_notifications()
    app.state.take_notices()
    await pilot.pause(0.6)
