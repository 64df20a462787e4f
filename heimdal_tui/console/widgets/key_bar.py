"""The bottom line: the keys that work here, from the screen's active bindings.

Textual's Footer rebuilds a widget per key (and restyles each) whenever the bindings change, which
is on every screen switch; over SSH on a Pi that made switching screens the slowest thing in the
console. This is one widget drawing one line of text from the same bindings (``show`` ones; a
binding group as its keys then its description, like the Footer's "123456 Screens"), redrawn only
when the line it would draw changes.
"""

from __future__ import annotations

from itertools import groupby

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

from heimdal_tui.console.themes import colours


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self) -> None:
        super().__init__("")
        self._shown: tuple[tuple[str, str, bool], ...] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.redraw)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is self.screen:
            self.redraw()

    def redraw(self) -> None:
        entries: list[tuple[str, str, bool]] = []
        shown = [active for active in self.screen.active_bindings.values() if active.binding.show]
        for group, grouped in groupby(shown, key=lambda active: active.binding.group):
            members = list(grouped)
            if group is not None and len(members) > 1:
                keys = "".join(self.app.get_key_display(m.binding) for m in members)
                entries.append((keys, group.description, all(m.enabled for m in members)))
            else:
                entries.extend(
                    (self.app.get_key_display(m.binding), m.binding.description, m.enabled) for m in members
                )
        line = tuple(entries)
        if line == self._shown:
            return
        self._shown = line
        palette = colours(self.app.theme_variables)
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, description, enabled in line:
            text.append(key, style=f"bold {palette.get('accent', '')}" if enabled else "dim")
            text.append(f" {description}  ", style="" if enabled else "dim")
        self.update(text, layout=False)  # always one line

    def restyle(self) -> None:
        """Draw again in the current theme's colours."""
        self._shown = None
        self.redraw()
