"""Regenerate the console screenshots the README shows (SVG, exported by Textual).

    python3 scripts/readme_screenshots.py            # writes docs/screenshots/*.svg

The console replays the bundled incident sample to its end on an in-process sensor with a frozen
clock (as the snapshot tests do), then each screen is saved at 100x30.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from heimdal_tui.console.factory import make_local_console
from heimdal_tui.sensor.build import SensorSpec

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
SHOTS = {"overview": "1", "alerts": "3", "devices": "2"}


async def shoot(tmp: Path) -> None:
    config = tmp / "config.toml"
    config.write_text("")
    spec = SensorSpec(
        replay=(str(REPO / "sample_pcaps" / "home_lan_incidents.pcap"),), speed=None, config_path=config,
        data_dir=tmp / "data", clock=lambda: 0.0,
    )  # fmt: skip
    app, built = make_local_console(spec)
    built.session.start()
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            while not (app.state.status and app.state.status.state == "finished" and app.state.drift):
                await asyncio.sleep(0.05)
            await pilot.pause(0.5)
            app.clear_notifications()
            OUT.mkdir(parents=True, exist_ok=True)
            for name, key in SHOTS.items():
                await pilot.press(key)
                await pilot.pause(0.8)
                app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
                print(OUT / f"{name}.svg")
    finally:
        built.cleanup()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(shoot(Path(tmp)))
