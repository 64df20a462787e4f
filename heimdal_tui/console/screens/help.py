"""`?`: every key that works here, with what it does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: 76;
        max-width: 100%;
        height: 90%;
        border: thick $primary;
        background: $surface;
    }
    HelpScreen DataTable {
        height: 1fr;
    }
    HelpScreen #help-title {
        padding: 0 1;
        text-style: bold;
    }
    """
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", key_display="Esc", id="help.close"),
    ]

    def __init__(self, where: str, keys: list[tuple[str, str, str]]) -> None:
        """``keys``: (key as shown, what it does, more help) for the screen the help is about."""
        super().__init__()
        self.where = where
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                Text(f"Keys: {self.where}   (Esc closes; ctrl+p finds any action by name)"), id="help-title"
            )
            table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("Key", "Action", "Details")
            for key, action, detail in self.keys:
                table.add_row(Text(key, style="bold"), Text(action), Text(detail))
            yield table

    def action_close(self) -> None:
        self.dismiss(None)
