"""The line above the footer on every screen: capture or replay state, progress, capture time."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from heimdal_tui.console import format as fmt
from heimdal_tui.console.themes import colours
from heimdal_tui.sensor.events import SensorStatus

BAR_WIDTH = 24


class SensorBar(Static):
    DEFAULT_CSS = """
    SensorBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def show_status(self, status: SensorStatus | None) -> None:
        # One line whatever it says: no layout pass (that would cost a whole-screen reflow 4x/s).
        self.update(describe(status, colours(self.app.theme_variables)), layout=False)


def describe(status: SensorStatus | None, colours: dict[str, str]) -> Text:
    if status is None:
        return Text("connecting to the sensor…")
    line = Text(no_wrap=True, overflow="ellipsis")
    accent = colours.get("accent", "")
    if status.state == "failed":
        line.append("✖ failed ", style=f"bold {colours.get('error', '')}")
        line.append(fmt.plain(status.error or "capture failed"))
        return line
    replay = status.replay
    if replay is not None:
        icon = {"paused": "⏸", "finished": "■"}.get(status.state, "▶")
        line.append(f"{icon} {fmt.speed(replay.speed):>5} ", style=f"bold {accent}")
        fraction = replay.fraction or 0.0
        filled = round(fraction * BAR_WIDTH)
        line.append("━" * filled, style=accent)
        line.append("━" * (BAR_WIDTH - filled), style=colours.get("panel-lighten-2", "dim"))
        line.append(f" {fmt.percent(replay.fraction):>4} ")
        line.append(f"{fmt.stamp(replay.capture_ts)} UTC")
        total = f"/{fmt.count(replay.frames_total)}" if replay.frames_total else ""
        line.append(f"  {fmt.count(replay.frames_done)}{total} frames")
        if replay.file_count > 1:
            line.append(f"  file {replay.file_index + 1}/{replay.file_count}")
    else:
        icon = "●" if status.state == "running" else "■"
        line.append(f"{icon} live ", style=f"bold {colours.get('success', '')}")
        line.append(fmt.plain(status.source, 60))
        line.append(f"  {fmt.stamp(status.capture_ts)} UTC")
        kernel = "n/a" if status.kernel_drops is None else fmt.count(status.kernel_drops)
        line.append(f"  drops {kernel}/{fmt.count(status.buffer_drops)}")
    if status.learning < 1.0:
        line.append(f"  learning {fmt.percent(status.learning)}", style=colours.get("warning", ""))
    if status.store and status.store != "ok":
        line.append(f"  store {status.store}", style=f"bold {colours.get('error', '')}")
    return line
