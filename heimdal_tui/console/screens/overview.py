"""1 Overview: how the sensor is doing at a glance; traffic, top talkers, the newest alerts."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Label, Sparkline, Static

from heimdal_tui.console import format as fmt
from heimdal_tui.console.screens.base import SensorScreen
from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.themes import colours, severity_styles
from heimdal_tui.console.widgets.keyed_table import Cell, Column, KeyedTable
from heimdal_tui.sensor.events import SEVERITY_ORDER, SensorStatus

TOP_TALKERS = 5
NEWEST_ALERTS = 8


class OverviewScreen(SensorScreen):
    TITLE = "1 Overview"
    PARTS = ("status", "devices", "alerts", "sync")
    DEFAULT_CSS = """
    OverviewScreen #tiles {
        height: 2;
        padding: 0 1;
        background: $surface;
    }
    OverviewScreen #traffic {
        height: 2;
        margin: 0 1;
    }
    OverviewScreen #talkers {
        height: 7;
    }
    OverviewScreen #newest {
        height: 1fr;
    }
    """

    def body(self) -> ComposeResult:
        yield Static(id="tiles")
        yield Label("Traffic: packets/s over the last two minutes", classes="panel-title", id="traffic-title")
        yield Sparkline([], id="traffic", summary_function=max)
        yield Label("Top talkers (last minute)", classes="panel-title")
        yield KeyedTable(
            [Column("name", "Device"), Column("type", "Type", 10), Column("ip", "Address", 15),
             Column("rate", "Rate", 10), Column("alerts", "Alerts", 6)],
            id="talkers",
            pin_top=True,
        )  # fmt: skip
        yield Label("Newest alerts  (3: triage)", classes="panel-title")
        yield KeyedTable(
            [Column("sev", "Sev", 6), Column("time", "Seen", 8), Column("kind", "Kind", 15),
             Column("device", "Device", 15), Column("summary", "Summary")],
            id="newest",
            pin_top=True,
        )  # fmt: skip

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#talkers", KeyedTable).order_by("rate", reverse=True)
        self.query_one("#newest", KeyedTable).order_by("time", reverse=True)

    def redraw(self, state: ConsoleState, changed: set[str]) -> None:
        palette = colours(self.app.theme_variables)
        if changed & {"status", "sync", "alerts"}:
            self.query_one("#tiles", Static).update(tiles(state.status, palette), layout=False)
        if "status" in changed and state.status is not None:
            self.query_one("#traffic", Sparkline).data = list(state.status.pps_history) or [0.0]
        if "devices" in changed:
            rows = sorted(state.devices.values(), key=lambda d: (-d.bps_1m, -(d.bytes_in + d.bytes_out)))
            self.query_one("#talkers", KeyedTable).show(
                {
                    str(d.key): [
                        Cell(d.name, sort=d.name.lower()),
                        Cell(d.type.replace("_", " ")),
                        Cell(d.ips[0] if d.ips else "-"),
                        Cell(fmt.rate(d.bps_1m), sort=(d.bps_1m, d.bytes_in + d.bytes_out)),
                        Cell(str(d.open_alerts) if d.open_alerts else "", sort=d.open_alerts),
                    ]
                    for d in rows[:TOP_TALKERS]
                }
            )
        if "alerts" in changed:
            styles = severity_styles(palette)
            self.query_one("#newest", KeyedTable).show(
                {
                    a.id: [
                        Cell(
                            f"{fmt.SEVERITY_MARK[a.severity]} {fmt.SEVERITY_LABEL[a.severity]}",
                            style=styles[a.severity],
                        ),
                        Cell(fmt.clock(a.last_seen), sort=(a.last_seen, a.id)),
                        Cell(a.kind),
                        Cell(a.device_name),
                        Cell(a.summary),
                    ]
                    for a in state.newest_alerts(NEWEST_ALERTS)
                }
            )


def tiles(status: SensorStatus | None, colours: dict[str, str]) -> Text:
    """Two lines of headline figures."""
    if status is None:
        return Text("waiting for the sensor…")
    styles = severity_styles(colours)
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append("Packets ", style="bold")
    line.append(f"{fmt.count(status.packets_per_second)}/s", style=colours.get("accent", ""))
    line.append(f" {fmt.rate(status.bits_per_second / 8)}")
    line.append("  Devices ", style="bold")
    line.append(str(status.devices))
    line.append("  Open ", style="bold")
    for sev in SEVERITY_ORDER:
        n = status.alerts_open.get(sev, 0)
        line.append(
            f"{fmt.SEVERITY_MARK[sev]}{fmt.SEVERITY_LABEL[sev]} {n} ", style=styles[sev] if n else "dim"
        )
    line.append("\n")
    line.append("State ", style="bold")
    state = status.state
    if status.replay is not None:
        state = f"replay {state} {fmt.percent(status.replay.fraction)} at {fmt.speed(status.replay.speed)}"
    line.append(state)
    line.append("   Sync ", style="bold")
    if status.sync_depth is None:
        line.append("not configured", style="dim")
    else:
        line.append(f"{status.sync_depth} queued ({status.sync_state})")
    line.append("   Frames ", style="bold")
    line.append(fmt.count(status.frames))
    if status.decode_errors:
        line.append(f"  decode errors {fmt.count(status.decode_errors)}", style=colours.get("warning", ""))
    return line
