"""4 Baseline drift: how far each device has moved from its baseline, since when, and in what.

Enter (or A) accepts a device's drift: what it did that the baseline never had joins the baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Label

from heimdal_tui.console import format as fmt
from heimdal_tui.console.screens.base import SensorScreen
from heimdal_tui.console.screens.prompt import Prompt
from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.themes import colours
from heimdal_tui.console.widgets.keyed_table import Cell, Column, KeyedTable, RowCache
from heimdal_tui.sensor.events import DriftRow

HISTORY_WIDTH = 24
COLUMNS = [
    Column("name", "Device", 16),
    Column("score", "Drift", 5),
    Column("history", "History", HISTORY_WIDTH),
    Column("moved", "Moved"),
    Column("pending", "New", 4),
    Column("when", "At", 8, min_width=100),
]
FEATURE_NAMES = {
    "destinations": "destinations",
    "services": "ports",
    "protocols": "protocols",
    "countries": "countries",
    "volume": "volume",
}


def moved_text(row: DriftRow) -> str:
    parts = [f"{FEATURE_NAMES.get(f, f)} {row.features[f]:.0%}" for f in row.moved]
    quiet = [f for f in row.features if f not in row.moved and row.features[f] > 0]
    if quiet:
        parts.append("(" + ", ".join(f"{FEATURE_NAMES.get(f, f)} {row.features[f]:.0%}" for f in quiet) + ")")
    return "  ".join(parts) or "-"


class DriftScreen(SensorScreen):
    TITLE = "4 Drift"
    PARTS = ("drift",)
    DEFAULT_CSS = """
    DriftScreen #drift-line {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    """
    BINDINGS = [
        Binding("A", "accept", "Accept drift", id="drift.accept",
                tooltip="Merge what the device newly did into its baseline (asks why)"),
        Binding("enter", "accept", "Accept", show=False, id="drift.enter"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self._rows = RowCache()

    def body(self) -> ComposeResult:
        yield Label("", id="drift-line")
        yield KeyedTable(COLUMNS, id="drift")

    def on_mount(self) -> None:
        super().on_mount()
        self.table.order_by("score", reverse=True)
        self.table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#drift", KeyedTable)

    def redraw(self, state: ConsoleState, changed: set[str]) -> None:
        warn = colours(self.app.theme_variables).get("warning", "")
        # Cells are rebuilt only for rows whose drift changed (a point every 5 minutes of capture
        # time per device): a thousand devices otherwise cost a redraw the operator waits for.
        rows = {
            str(r.key): self._rows.cells(str(r.key), (r, warn), partial(self._cells, r, warn))
            for r in state.drift.values()
        }
        self._rows.keep(rows)
        self.table.show(rows)
        if state.drift:
            worst = max(state.drift.values(), key=lambda r: r.score)
            line = f"{len(state.drift)} devices scored (0 = as learned, 1 = nothing like it); most drifted: "
            line += f"{worst.name} {worst.score:.2f}"
        else:
            line = "no drift scored yet: devices are scored every 5 minutes of capture time once their baseline is mature"
        self.query_one("#drift-line", Label).update(fmt.plain(line), layout=False)

    @staticmethod
    def _cells(r: DriftRow, warn: str) -> list[Cell]:
        return [
            Cell(r.name),
            Cell(f"{r.score:.2f}", sort=r.score, style=f"bold {warn}" if r.score >= 0.5 else ""),
            Cell(fmt.spark(r.history, HISTORY_WIDTH), sort=len(r.history)),
            Cell(moved_text(r)),
            Cell(str(r.pending) if r.pending else "", sort=r.pending),
            Cell(fmt.clock(r.ts), sort=r.ts),
        ]

    def action_accept(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        row = self.heimdal.state.drift.get(int(key))
        name = row.name if row else key

        def apply(reason: str | None) -> None:
            if reason is None:
                return

            def done(result: dict) -> None:
                merged = result.get("merged", {})
                count = sum(len(v) for k, v in merged.items() if k != "minutes")
                self.notify(f"{name}: {count} new items joined the baseline", timeout=4)

            self.heimdal.send("accept_drift", on_done=done, key=int(key), reason=reason)

        self.app.push_screen(
            Prompt(f"Accept the drift of {name} into its baseline? Why? (Enter accepts, Escape cancels)"),
            apply,
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_accept()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Drift: Accept the drift of the device under the cursor", "Into its baseline",
                            self.action_accept)  # fmt: skip
