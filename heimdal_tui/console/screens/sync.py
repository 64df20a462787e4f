"""5 Sync queue: what waits to go to Asgard, what went, what failed, and the exact JSON that leaves.

p pauses or resumes sending, t retries now (the item under the cursor, or all), d drops an item,
Enter shows the anonymized JSON of the item under the cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from heimdal_tui.console import format as fmt
from heimdal_tui.console.screens.base import SensorScreen
from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.themes import colours
from heimdal_tui.console.widgets.keyed_table import Cell, Column, KeyedTable

COLUMNS = [
    Column("kind", "Item", 10),
    Column("priority", "Prio", 4),
    Column("state", "State", 9),
    Column("attempts", "Tries", 5),
    Column("created", "Queued", 8),
    Column("next", "Next try", 8),
    Column("size", "Size", 8),
    Column("error", "Last error"),
]
NOT_CONFIGURED = (
    "Sync with Asgard is not configured: the queue stays empty and nothing leaves this network.\n"
    "Set [asgard] url in the configuration (or HEIMDAL_ASGARD_URL) and an API key file "
    "(or HEIMDAL_ASGARD_API_KEY); see the README's Asgard section."
)


class SyncScreen(SensorScreen):
    TITLE = "5 Sync"
    PARTS = ("sync",)
    DEFAULT_CSS = """
    SyncScreen #sync-head {
        height: auto;
        padding: 0 1;
        background: $surface;
    }
    SyncScreen #queue {
        height: 1fr;
    }
    SyncScreen #preview {
        height: auto;
        max-height: 10;
        padding: 0 1;
        background: $panel;
    }
    """
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause sync", id="sync.pause", tooltip="Pause or resume sending to Asgard"),
        Binding("t", "retry", "Retry now", id="sync.retry", tooltip="Retry the item under the cursor now"),
        Binding("T", "retry_all", "Retry all", show=False, id="sync.retry_all", tooltip="Retry every waiting item now"),
        Binding("d", "drop", "Drop", id="sync.drop", tooltip="Drop the item under the cursor (counted as dropped)"),
        Binding("enter", "preview", "JSON", show=False, id="sync.preview",
                tooltip="The exact anonymized JSON of the item under the cursor"),
    ]  # fmt: skip

    def body(self) -> ComposeResult:
        with Vertical():
            yield Static(id="sync-head")
            yield KeyedTable(COLUMNS, id="queue")
            yield Static(id="preview", classes="hidden")

    def on_mount(self) -> None:
        super().on_mount()
        self.table.order_by("priority", reverse=True)
        self.table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#queue", KeyedTable)

    @property
    def status(self) -> dict[str, Any]:
        return self.heimdal.state.sync or {"configured": False}

    def redraw(self, state: ConsoleState, changed: set[str]) -> None:
        sync = state.sync or {"configured": False}
        self.query_one("#sync-head", Static).update(head(sync, colours(self.app.theme_variables)))
        items = sync.get("items") or []
        self.table.show({str(item["id"]): _cells(item) for item in items})

    # -- actions -----------------------------------------------------------------------------------
    def _ready(self) -> bool:
        if not self.status.get("configured"):
            self.notify("sync with Asgard is not configured", severity="warning", timeout=4)
            return False
        return True

    def action_toggle_pause(self) -> None:
        if self._ready():
            self.heimdal.send("sync", action="resume" if self.status.get("state") == "paused" else "pause")

    def action_retry(self) -> None:
        if self._ready():
            self.heimdal.send("sync", action="retry", item_id=self.table.cursor_key)

    def action_retry_all(self) -> None:
        if self._ready():
            self.heimdal.send("sync", action="retry", item_id=None)

    def action_drop(self) -> None:
        key = self.table.cursor_key
        if self._ready() and key is not None:
            self.heimdal.send(
                "sync", on_done=lambda _r: self.notify("item dropped", timeout=3), action="drop", item_id=key
            )

    def action_preview(self) -> None:
        key = self.table.cursor_key
        if not self._ready() or key is None:
            return

        def show(text: str) -> None:
            preview = self.query_one("#preview", Static)
            preview.update(
                Text(f"Item {key}, exactly as it will leave the network:\n", style="bold")
                + fmt.plain(text, 4000)
            )
            preview.remove_class("hidden")

        self.heimdal.send("sync_preview", on_done=show, item_id=key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_preview()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Sync: Pause / resume", "Sending to Asgard", self.action_toggle_pause)
        yield SystemCommand("Sync: Retry now", "The item under the cursor", self.action_retry)
        yield SystemCommand("Sync: Retry everything now", "Every waiting item", self.action_retry_all)
        yield SystemCommand("Sync: Drop item", "The item under the cursor", self.action_drop)
        yield SystemCommand("Sync: Show the JSON", "Exactly what leaves the network", self.action_preview)


def head(sync: dict[str, Any], colours: dict[str, str]) -> Text:
    if not sync.get("configured"):
        text = Text("Queue 0   sent 0   failed 0   dropped 0\n", style="bold")
        text.append_text(fmt.plain(sync.get("reason") or NOT_CONFIGURED, 600, style="dim"))
        return text
    text = Text()
    state = str(sync.get("state", "?"))
    style = {"auth_failed": f"bold {colours.get('error', '')}", "backoff": colours.get("warning", ""),
             "paused": colours.get("warning", "")}.get(state, colours.get("success", ""))  # fmt: skip
    label = "authentication failed" if state == "auth_failed" else state
    text.append(f"{label}", style=style)
    text.append("   ")
    text.append_text(fmt.plain(sync.get("url") or ""))
    text.append(f"\nQueue {sync.get('depth', 0)}   sent {sync.get('sent', 0)}   failed {sync.get('failed', 0)}"
                f"   retried {sync.get('retried', 0)}   dropped {sync.get('dropped', 0)}"
                f"   rejected {sync.get('rejected', 0)}   {sync.get('throughput_per_minute', 0):g}/min")  # fmt: skip
    if sync.get("next_retry"):
        text.append(f"   next try {fmt.clock(sync['next_retry'])}")
    if sync.get("intel_version") is not None:
        text.append(f"   intelligence v{sync['intel_version']}")
    if sync.get("last_error"):
        text.append("\nlast error: ", style="bold")
        text.append_text(fmt.plain(sync["last_error"], 300))
    return text


def _cells(item: dict[str, Any]) -> list[Cell]:
    return [
        Cell(item.get("kind", "")),
        Cell(str(item.get("priority", "")), sort=item.get("priority", 0)),
        Cell(item.get("state", "")),
        Cell(str(item.get("attempts", 0)), sort=item.get("attempts", 0)),
        Cell(fmt.clock(item.get("created")), sort=item.get("created") or 0),
        Cell(
            fmt.clock(item.get("next_retry")) if item.get("next_retry") else "",
            sort=item.get("next_retry") or 0,
        ),
        Cell(fmt.bytes_(item.get("size", 0)), sort=item.get("size", 0)),
        Cell(item.get("last_error") or ""),
    ]
