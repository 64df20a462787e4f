"""2 Devices: every device on the LAN, sortable and filterable; Enter opens one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Label

from heimdal_tui.console import format as fmt
from heimdal_tui.console.screens.base import SensorScreen
from heimdal_tui.console.screens.prompt import Prompt
from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.widgets.keyed_table import Cell, Column, KeyedTable, RowCache
from heimdal_tui.sensor.events import DeviceRow

COLUMNS = [
    Column("name", "Name"),
    Column("vendor", "Vendor", 16, min_width=98),
    Column("type", "Type", 9),
    Column("ip", "Address", 15),
    Column("rate", "Rate", 9),
    Column("seen", "Seen", 4),
    Column("alerts", "!", 2),
    Column("drift", "Drift", 5),
]
SORTABLE = [c.key for c in COLUMNS]
# Columns whose natural order is biggest first.
DESCENDING = {"rate", "seen", "alerts", "drift"}


def matches(device: DeviceRow, words: list[str]) -> bool:
    haystack = " ".join(
        filter(None, (device.name, device.hostname, device.vendor, device.type, device.mac, *device.ips))
    ).lower()
    return all(w in haystack for w in words)


class DevicesScreen(SensorScreen):
    TITLE = "2 Devices"
    PARTS = ("devices",)
    DEFAULT_CSS = """
    DevicesScreen #devices-line {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    """
    BINDINGS = [
        Binding("o", "sort_next", "Sort", id="devices.sort", tooltip="Sort by the next column"),
        Binding("O", "sort_reverse", "Reverse", show=False, id="devices.reverse", tooltip="Reverse the order"),
        Binding("slash", "filter", "Filter", key_display="/", id="devices.filter",
                tooltip="Show devices whose name, vendor, type, MAC or address hold these words"),
        Binding("enter", "open", "Open", show=False, id="devices.open", tooltip="The device in depth"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.sort_key = "rate"
        self.reverse = True
        self._rows = RowCache()

    def body(self) -> ComposeResult:
        yield Label("", id="devices-line")
        yield KeyedTable(COLUMNS, id="devices")

    def on_mount(self) -> None:
        super().on_mount()
        self.table.order_by(self.sort_key, self.reverse)
        self.table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#devices", KeyedTable)

    def redraw(self, state: ConsoleState, changed: set[str]) -> None:
        now = state.status.capture_ts if state.status else None
        shown = [d for d in state.devices.values() if matches(d, self.words)]
        rows: dict[str, Sequence[Cell]] = {}
        for d in shown:
            ago = fmt.ago(d.last_seen, now)
            # One source value per column: only the cells whose value moved are built again.
            values = (
                (d.name, d.open_alerts > 0),
                (d.vendor, d.mac is not None),
                d.type,
                d.ips[:1],
                (d.bps, d.bytes_in + d.bytes_out),
                (ago, d.last_seen),
                d.open_alerts,
                d.drift,
            )
            rows[str(d.key)] = self._rows.columns(str(d.key), values, partial(self._cell, d, ago))
        self._rows.keep(rows)
        self.table.show(rows)
        arrow = "↓" if self.reverse else "↑"
        line = f"{len(shown)} of {len(state.devices)} devices   sorted by {self.sort_key} {arrow}"
        if self.words:
            line += f"   filter: {' '.join(self.words)}"
        self.query_one("#devices-line", Label).update(fmt.plain(line), layout=False)

    @staticmethod
    def _cell(d: DeviceRow, ago: str, column: int) -> Cell:
        warn = "bold" if d.open_alerts else ""
        if column == 0:
            return Cell(d.name, style=warn)
        if column == 1:
            return Cell(d.vendor or ("(random MAC)" if d.mac and not d.vendor else "-"))
        if column == 2:
            return Cell(d.type.replace("_", " "))
        if column == 3:
            return Cell(d.ips[0] if d.ips else "-", sort=_ip_sort(d.ips[0]) if d.ips else None)
        if column == 4:
            return Cell(fmt.rate(d.bps), sort=(d.bps, d.bytes_in + d.bytes_out))
        if column == 5:
            return Cell(ago, sort=d.last_seen)
        if column == 6:
            return Cell(str(d.open_alerts) if d.open_alerts else "", sort=d.open_alerts, style=warn)
        return Cell("-" if d.drift is None else f"{d.drift:.2f}", sort=-1.0 if d.drift is None else d.drift)

    # -- actions -----------------------------------------------------------------------------------
    def action_sort_next(self) -> None:
        index = (SORTABLE.index(self.sort_key) + 1) % len(SORTABLE)
        self._sort(SORTABLE[index], SORTABLE[index] in DESCENDING)

    def action_sort_reverse(self) -> None:
        self._sort(self.sort_key, not self.reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.sort_key:
            self._sort(key, not self.reverse)
        else:
            self._sort(key, key in DESCENDING)

    def _sort(self, key: str, reverse: bool) -> None:
        self.sort_key, self.reverse = key, reverse
        self.table.order_by(key, reverse)
        self.refresh_from(self.heimdal.state, force=True)

    def action_filter(self) -> None:
        def apply(text: str | None) -> None:
            if text is not None:
                self.words = text.lower().split()
                self.refresh_from(self.heimdal.state, force=True)

        self.app.push_screen(
            Prompt("Show devices matching (name, vendor, type, MAC, address; empty: all)",
                   value=" ".join(self.words)),
            apply,
        )  # fmt: skip

    def action_open(self) -> None:
        key = self.table.cursor_key
        if key is not None:
            from heimdal_tui.console.screens.device_detail import DeviceDetailScreen

            self.app.push_screen(DeviceDetailScreen(int(key)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Devices: Filter", "Match name, vendor, type, MAC or address", self.action_filter)
        for column in COLUMNS:
            yield SystemCommand(
                f"Devices: Sort by {column.label.lower()}", "Order the device list",
                lambda k=column.key: self._sort(k, k in DESCENDING),
            )  # fmt: skip
        yield SystemCommand(
            "Devices: Open the device under the cursor", "Identity, baseline, alerts", self.action_open
        )


def _ip_sort(ip: str) -> tuple[int, ...]:
    if ":" in ip:
        return (6, *(int(part, 16) if part else 0 for part in ip.split(":")))
    try:
        return (4, *(int(part) for part in ip.split(".")))
    except ValueError:
        return (9,)
