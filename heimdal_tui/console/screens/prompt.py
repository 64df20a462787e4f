"""A small modal that asks the operator one line (a reason, a snooze duration, a label, a filter)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from heimdal_tui.console.format import plain


class Prompt(ModalScreen[str | None]):
    """Dismisses with the text entered (Enter), or None (Escape). ``check`` returns an error
    message for text that will not do, shown under the field."""

    DEFAULT_CSS = """
    Prompt {
        align: center middle;
    }
    Prompt > Vertical {
        width: 64;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    Prompt #question {
        width: 100%;
        margin-bottom: 1;
    }
    Prompt #problem {
        color: $error;
        height: auto;
    }
    Prompt #hint {
        color: $foreground-muted;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self,
        question: str,
        *,
        value: str = "",
        placeholder: str = "",
        hint: str = "Enter to confirm, Escape to cancel",
        check: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.question = question
        self.initial = value
        self.placeholder = placeholder
        self.hint = hint
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.question), id="question")
            yield Input(value=self.initial, placeholder=self.placeholder, id="answer")
            yield Label("", id="problem")
            yield Label(plain(self.hint), id="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        problem = self.check(text) if self.check else None
        if problem:
            self.query_one("#problem", Label).update(plain(problem))
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
