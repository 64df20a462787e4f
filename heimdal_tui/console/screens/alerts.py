"""3 Alerts: the triage queue.

Newest first. a acknowledge, r resolve, f false positive (asks a reason), s snooze (asks how long),
o reopen, Enter the evidence, space selects for bulk actions, / filters. Arriving alerts never move
the cursor: when the operator has scrolled away from the top, a "N new" marker says how many came
in above, and g (or Home) goes back to the newest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Label

from heimdal_tui.common.durations import parse_duration
from heimdal_tui.console import format as fmt
from heimdal_tui.console.alert_filter import AlertFilter, FilterError, parse_filter
from heimdal_tui.console.screens.base import SensorScreen
from heimdal_tui.console.screens.prompt import Prompt
from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.themes import colours, severity_styles
from heimdal_tui.console.widgets.keyed_table import Cell, Column, KeyedTable, RowCache
from heimdal_tui.sensor.events import AlertRow

SEVERITY_RANK = {"critical": 3, "high": 2, "medium": 1, "low": 0}
COLUMNS = [
    Column("sel", " ", 1),
    Column("sev", "Sev", 6),
    Column("state", "St", 4),
    Column("kind", "Kind", 14),
    Column("device", "Device", 12),
    Column("peer", "Peer", 16, min_width=110),
    Column("count", "N", 4, min_width=100),
    Column("seen", "Since", 8),
    Column("summary", "Summary"),
]


def duration_problem(text: str) -> str | None:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        return str(exc)
    return None if seconds > 0 else "a snooze needs a positive duration"


class AlertsScreen(SensorScreen):
    TITLE = "3 Alerts"
    PARTS = ("alerts",)
    DEFAULT_CSS = """
    AlertsScreen #filter-line {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    """
    BINDINGS = [
        Binding("a", "triage('acknowledge')", "Ack", id="alerts.acknowledge", tooltip="Acknowledge: seen, on it"),
        Binding("r", "triage('resolve')", "Resolve", id="alerts.resolve", tooltip="Resolve: dealt with"),
        Binding("f", "triage('false_positive')", "False +", id="alerts.false_positive",
                tooltip="False positive: asks a reason; the behaviour joins the baseline or allowlist"),
        Binding("s", "triage('snooze')", "Snooze", id="alerts.snooze",
                tooltip="Silence this device/kind/peer for a while (asks how long)"),
        Binding("o", "triage('reopen')", "Reopen", show=False, id="alerts.reopen", tooltip="Open again"),
        Binding("space", "select", "Select", id="alerts.select", tooltip="Select for a bulk action"),
        Binding("slash", "filter", "Filter", key_display="/", id="alerts.filter",
                tooltip="Filter: sev:high state:all kind:scan dev:laptop words"),
        Binding("enter", "details", "Details", show=False, id="alerts.details", tooltip="The evidence: why"),
        Binding("g,home", "newest", "Newest", show=False, id="alerts.newest", tooltip="Go to the newest alert"),
        Binding("escape", "clear_selection", "Clear selection", show=False, id="alerts.clear"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.filter: AlertFilter = parse_filter("")
        self.selected: set[str] = set()
        self.new_above = 0
        self._rows = RowCache()

    def body(self) -> ComposeResult:
        yield Label("", id="filter-line")
        yield Label("", id="new-marker", classes="marker hidden")
        yield KeyedTable(COLUMNS, id="alerts")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(KeyedTable)
        table.order_by("seen", reverse=True)
        table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#alerts", KeyedTable)

    def shown_alerts(self, state: ConsoleState) -> list[AlertRow]:
        return [a for a in state.alerts.values() if self.filter.matches(a)]

    def redraw(self, state: ConsoleState, changed: set[str]) -> None:
        styles = severity_styles(colours(self.app.theme_variables))
        shown = self.shown_alerts(state)
        self.selected &= {a.id for a in shown}
        table = self.table
        rows = {
            a.id: self._rows.cells(
                a.id, (a, a.id in self.selected, styles["critical"]), partial(self._cells, a, styles)
            )
            for a in shown
        }
        self._rows.keep(rows)
        table.show(rows)
        if table.inserted_above:
            self.new_above += table.inserted_above
        if table.scroll_y <= 0:
            self.new_above = 0
        total = len(state.alerts)
        line = f"{len(shown)} of {total} alerts: {self.filter.describe()}"
        status = state.status
        if total == 0 and status is not None and status.learning < 1.0:
            line += (
                f"; none yet: baselines are learning ({status.learning:.0%}), scans and spoofing show at once"
            )
        if self.selected:
            line += f"   {len(self.selected)} selected"
        self.query_one("#filter-line", Label).update(fmt.plain(line), layout=False)
        self._show_marker()

    def _show_marker(self) -> None:
        """The "N new above" marker, shown while new_above counts rows the operator has not seen."""
        marker = self.query_one("#new-marker", Label)
        marker.set_class(self.new_above == 0, "hidden")
        if self.new_above:
            marker.update(fmt.plain(f"▲ {self.new_above} new above   g: go to the newest"), layout=False)

    def _cells(self, a: AlertRow, styles: dict[str, str]) -> list[Cell]:
        closed = a.state in ("resolved", "false_positive")
        base = "dim" if closed else ""
        return [
            Cell("●" if a.id in self.selected else "", style="bold"),
            Cell(
                f"{fmt.SEVERITY_MARK[a.severity]} {fmt.SEVERITY_LABEL[a.severity]}",
                sort=SEVERITY_RANK[a.severity],
                style=styles[a.severity] if not closed else "dim",
            ),
            Cell(fmt.STATE_LABEL.get(a.state, a.state), style=base),
            Cell(a.kind, style=base),
            Cell(a.device_name, style=base),
            Cell(a.peer or "", style=base),
            Cell(str(a.count), sort=a.count, style=base),
            Cell(fmt.clock(a.first_seen), sort=(a.first_seen, a.id), style=base),
            Cell(a.summary, style=base),
        ]

    # -- targets -----------------------------------------------------------------------------------
    def targets(self) -> list[str]:
        """The selected alerts, else the one under the cursor."""
        if self.selected:
            return sorted(self.selected)
        key = self.table.cursor_key
        return [key] if key else []

    # -- actions -----------------------------------------------------------------------------------
    def action_triage(self, action: str) -> None:
        ids = self.targets()
        if not ids:
            self.notify("no alert here to act on", severity="warning", timeout=3)
            return
        what = f"{len(ids)} alerts" if len(ids) > 1 else "this alert"
        app = self.heimdal
        done = self._done(action, len(ids))
        if action == "false_positive":

            def send_reason(reason: str | None) -> None:
                if reason:
                    app.send("false_positive", on_done=done, ids=ids, reason=reason)

            app.push_screen(
                Prompt(
                    f"Why is {what} a false positive? (goes into the audit trail)",
                    placeholder="e.g. the NAS backs up to this host every night",
                    check=lambda text: None if text else "a reason is needed",
                ),
                send_reason,
            )
        elif action == "snooze":

            def send_duration(duration: str | None) -> None:
                if duration:
                    app.send("snooze", on_done=done, ids=ids, duration=duration)

            app.push_screen(
                Prompt(
                    f"Snooze {what} for how long? (capture time)",
                    value="1h",
                    placeholder="30m, 2h, 1d",
                    check=duration_problem,
                ),
                send_duration,
            )
        else:
            app.send(action, on_done=done, ids=ids)

    def _done(self, action: str, n: int) -> Callable[[dict[str, Any]], None]:
        verb = {"acknowledge": "acknowledged", "resolve": "resolved", "false_positive": "marked false positive",
                "snooze": "snoozed", "reopen": "reopened"}[action]  # fmt: skip

        def done(result: dict[str, Any]) -> None:
            self.selected.clear()
            count = len(result.get("done", [])) if isinstance(result, dict) else n
            self.notify(f"{count} alert{'s' if count != 1 else ''} {verb}", timeout=3)

        return done

    def action_select(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        self.selected ^= {key}
        self.refresh_from(self.heimdal.state, force=True)
        self.table.action_cursor_down()

    def action_clear_selection(self) -> None:
        if self.selected:
            self.selected.clear()
            self.refresh_from(self.heimdal.state, force=True)

    def action_filter(self) -> None:
        def apply(text: str | None) -> None:
            if text is None:
                return
            self.filter = parse_filter(text)
            self.refresh_from(self.heimdal.state, force=True)

        def problem(text: str) -> str | None:
            try:
                parse_filter(text)
            except FilterError as exc:
                return str(exc)
            return None

        self.app.push_screen(
            Prompt(
                "Filter alerts (empty: the active ones)",
                value=self.filter.text,
                placeholder="sev:high,critical state:all kind:scan dev:laptop words",
                hint="sev: state: (open ack resolved fp all) kind: dev: and words; Enter applies",
                check=problem,
            ),
            apply,
        )

    def action_newest(self) -> None:
        # Draw what arrived meanwhile first (the periodic redraw waits while the operator types):
        # the newest alert may be among it.
        self.refresh_from(self.heimdal.state, force=True)
        table = self.table
        if table.row_count:
            table.move_cursor(row=0)
            table.scroll_home(animate=False)
        self.new_above = 0
        self._show_marker()

    def action_details(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        from heimdal_tui.console.screens.alert_detail import AlertDetailScreen

        self.app.push_screen(AlertDetailScreen(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()

    def palette_commands(self) -> Iterable[SystemCommand]:
        for action, title in (("acknowledge", "Acknowledge"), ("resolve", "Resolve"),
                              ("false_positive", "Mark false positive"), ("snooze", "Snooze"),
                              ("reopen", "Reopen")):  # fmt: skip
            yield SystemCommand(f"Alerts: {title}", "The selected alerts, or the one under the cursor",
                                lambda a=action: self.action_triage(a))  # fmt: skip
        yield SystemCommand("Alerts: Filter", "sev: state: kind: dev: and words", self.action_filter)
        yield SystemCommand("Alerts: Go to the newest", "Back to the top of the queue", self.action_newest)
