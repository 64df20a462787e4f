"""6 Thresholds: every detector's settings, checked as typed, with a live what-if.

Pick a detector on the left; edit its values on the right (each is checked by the sensor exactly
as the configuration file would be). As values change, the what-if line says how many alerts the
detector raised over the recent history the sensor keeps, and how many it would have with the new
values. ctrl+s applies them at once (no restart) and writes them to the configuration file;
ctrl+r puts back the values in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static, Switch
from textual.widgets.option_list import Option

from heimdal_tui.console import format as fmt
from heimdal_tui.console.screens.base import SensorScreen
from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.themes import colours

WHAT_IF_DELAY = 0.4  # seconds of quiet typing before a what-if runs


def parse_value(field: dict[str, Any], text: str) -> Any:
    """What the operator typed, as the setting's type (the sensor checks ranges). ValueError when
    it is not of that type at all."""
    kind = field["type"]
    text = text.strip()
    if kind == "seq":
        items = [part.strip() for part in text.split(",") if part.strip()]
        item = field.get("item_type") or "str"
        return [_scalar(item, part) for part in items]
    return _scalar(kind, text)


def _scalar(kind: str, text: str) -> Any:
    if kind == "int":
        try:
            return int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "float":
        try:
            return float(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    return text


def show_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


class ThresholdsScreen(SensorScreen):
    TITLE = "6 Thresholds"
    PARTS = ()
    DEFAULT_CSS = """
    ThresholdsScreen #detectors {
        width: 24;
        height: 1fr;
    }
    ThresholdsScreen #form {
        height: 1fr;
        padding: 0 1;
    }
    ThresholdsScreen .field {
        height: auto;
        margin-bottom: 1;
    }
    ThresholdsScreen .field Label {
        width: 100%;
    }
    ThresholdsScreen .field Input {
        width: 100%;
    }
    ThresholdsScreen #whatif {
        height: auto;
        min-height: 2;
        padding: 0 1;
        background: $panel;
    }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="thresholds.save",
                tooltip="Apply now (no restart) and write to the configuration file"),
        Binding("ctrl+r", "revert", "Revert", id="thresholds.revert", tooltip="Put back the values in force"),
        Binding("escape", "focus_list", "Detectors", show=False, id="thresholds.list"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.settings: dict[str, Any] = {}
        self.kind: str | None = None
        self._timer: Timer | None = None
        self._problems: dict[str, str] = {}

    def body(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(id="detectors")
            with Vertical():
                yield VerticalScroll(id="form")
                yield Static(Text("pick a detector on the left"), id="whatif")

    def on_mount(self) -> None:
        super().on_mount()
        self.heimdal.send("thresholds", on_done=self._loaded)

    def redraw(self, state: ConsoleState, changed: set[str]) -> None:
        """Nothing here follows the traffic; the what-if runs when values change."""

    def _loaded(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        options = self.query_one("#detectors", OptionList)
        options.clear_options()
        for kind, info in settings.items():
            enabled = next((f["value"] for f in info["fields"] if f["key"] == "enabled"), True)
            label = Text(("● " if enabled else "○ ") + kind)
            options.add_option(Option(label, id=kind))
        if self.kind is None and settings:
            options.highlighted = 0
            self._show_form(next(iter(settings)))
        elif self.kind is not None:
            self._show_form(self.kind)
        options.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.kind:
            self._show_form(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        for widget in self.query_one("#form").query("Input, Switch"):
            widget.focus()
            break

    def _show_form(self, kind: str) -> None:
        self.kind = kind
        self._problems.clear()
        info = self.settings[kind]
        form = self.query_one("#form", VerticalScroll)
        form.remove_children()
        widgets: list[Widget] = []
        note = (
            "needs a mature baseline"
            if info["needs_baseline"]
            else "works from the first minute (no baseline)"
        )
        widgets.append(Label(Text(f"{kind}: {note}", style="bold")))
        for field in info["fields"]:
            label = Text(field["key"], style="bold")
            if field["range"]:
                label.append(f"  ({field['range']})", style="dim")
            if field["help"]:
                label.append(f"  {field['help']}")
            if field["type"] == "bool":
                control: Input | Switch = Switch(value=bool(field["value"]), id=f"field-{field['key']}")
            else:
                control = Input(value=show_value(field["value"]), id=f"field-{field['key']}")
            box = Vertical(Label(label), control, Label("", classes="problem"), classes="field")
            widgets.append(box)
        form.mount_all(widgets)
        self._what_if_soon()

    # -- values --------------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The form's values that differ from those in force (typed; ValueError recorded per field)."""
        assert self.kind is not None
        out: dict[str, Any] = {}
        self._problems.clear()
        for field in self.settings[self.kind]["fields"]:
            widget = self.query_one(f"#field-{field['key']}")
            if isinstance(widget, Switch):
                value: Any = widget.value
            else:
                assert isinstance(widget, Input)
                try:
                    value = parse_value(field, widget.value)
                except ValueError as exc:
                    self._problems[field["key"]] = str(exc)
                    continue
            if value != field["value"]:
                out[field["key"]] = value
        return out

    def on_input_changed(self, event: Input.Changed) -> None:
        self._what_if_soon()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self._what_if_soon()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._what_if()

    def _what_if_soon(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(WHAT_IF_DELAY, self._what_if)

    def _what_if(self) -> None:
        if self.kind is None:
            return
        kind = self.kind
        values = self.values()
        self._show_problems()
        if self._problems:
            self._say(
                Text(
                    "fix the values marked in red first",
                    style=colours(self.app.theme_variables).get("error", ""),
                )
            )
            return
        self.heimdal.send("what_if", on_done=lambda r: self._show_what_if(kind, values, r),
                          on_error=self._say_error, kind=kind, values=values)  # fmt: skip

    def _show_what_if(self, kind: str, values: dict[str, Any], result: dict[str, Any]) -> None:
        if kind != self.kind:
            return
        text = Text()
        if result["batches"]:
            text.append(f"Over the recent history ({fmt.stamp(result['from'])} .. {fmt.clock(result['to'])} UTC, "
                        f"{result['batches']} batch{'es' if result['batches'] != 1 else ''}): ")  # fmt: skip
            text.append(f"{result['current']} alerts with the values in force", style="bold")
            if values:
                text.append(", ")
                text.append(f"{result['proposed']} with these", style="bold")
            if result["estimate"]:
                text.append("\n(an estimate: compared with the baselines as they are now)", style="dim")
        else:
            text.append("no recent traffic to try the values on yet", style="dim")
        if values:
            text.append("\nchanged: " + ", ".join(f"{k} = {show_value(v)}" for k, v in values.items()))
            text.append("   ctrl+s applies and saves", style="dim")
        self._say(text)

    def _say(self, text: Text) -> None:
        self.query_one("#whatif", Static).update(text)

    def _say_error(self, message: str) -> None:
        self._say(fmt.plain(message, 600, style=colours(self.app.theme_variables).get("error", "")))

    def _show_problems(self) -> None:
        for box in self.query(".field"):
            control = box.query("Input, Switch").first()
            key = (control.id or "").removeprefix("field-")
            problem = box.query_one(".problem", Label)
            problem.update(
                fmt.plain(
                    self._problems.get(key, ""), style=colours(self.app.theme_variables).get("error", "")
                )
            )

    # -- actions -------------------------------------------------------------------------------------
    def action_save(self) -> None:
        if self.kind is None:
            return
        kind = self.kind
        values = self.values()
        self._show_problems()
        if self._problems:
            self.notify("fix the values marked in red first", severity="error", timeout=4)
            return
        if not values:
            self.notify("nothing changed", timeout=3)
            return

        def done(result: dict[str, Any]) -> None:
            where = f" and saved to {result['saved_to']}" if result.get("saved_to") else ""
            self.notify(f"{kind}: applied now{where}", timeout=5)
            self.heimdal.send("thresholds", on_done=self._loaded)

        self.heimdal.send("set_thresholds", on_done=done, kind=kind, values=values, save=True)

    def action_revert(self) -> None:
        if self.kind is not None:
            self._show_form(self.kind)

    def action_focus_list(self) -> None:
        self.query_one("#detectors", OptionList).focus()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Thresholds: Save", "Apply now and write the configuration file", self.action_save
        )
        yield SystemCommand("Thresholds: Revert", "Put back the values in force", self.action_revert)
