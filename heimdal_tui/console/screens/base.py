"""What every console screen shares: header, sensor bar, footer, and a refresh from the state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header

from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.widgets.key_bar import KeyBar
from heimdal_tui.console.widgets.sensor_bar import SensorBar

if TYPE_CHECKING:
    from heimdal_tui.console.app import HeimdalApp


class SensorScreen(Screen[None]):
    """A screen drawn from the ConsoleState. Subclasses compose ``body()`` and implement
    ``redraw(state, changed)``; the app calls :meth:`refresh_from` on the visible screen only."""

    TITLE: ClassVar[str] = ""
    # Parts of the state this screen draws (redraw is skipped when none of them moved).
    PARTS: ClassVar[tuple[str, ...]] = ("status",)

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, int] = {}

    @property
    def heimdal(self) -> HeimdalApp:
        from heimdal_tui.console.app import HeimdalApp

        app = self.app
        assert isinstance(app, HeimdalApp)
        return app

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◈")
        with Vertical(id="body"):
            yield from self.body()
        yield SensorBar()
        yield KeyBar()

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.title = "Heimdal"
        self.sub_title = self.TITLE
        self.call_after_refresh(self.refresh_from, self.heimdal.state, True)

    def on_screen_resume(self) -> None:
        # Shown again: first paint it as it was when hidden (the operator sees the screen they
        # asked for at once), then draw what moved meanwhile, right after that paint. Drawing it
        # first held the switch for a redraw of up to thousands of rows (100-400 ms at full speed).
        self.call_after_refresh(self._refresh_shown)

    def _refresh_shown(self) -> None:
        if self.is_current:  # not switched away again before the paint: hidden screens draw nothing
            self.refresh_from(self.heimdal.state)

    def refresh_from(self, state: ConsoleState, force: bool = False) -> None:
        bars = self.query(SensorBar)
        if not self.is_mounted or not bars:
            return  # not composed yet: the first refresh after mounting draws everything
        changed = {p for p in (*self.PARTS, "status") if state.versions.get(p, 0) != self._seen.get(p)}
        if not changed and not force:
            return
        self._seen = {p: state.versions.get(p, 0) for p in (*self.PARTS, "status")}
        if "status" in changed or force:
            bars.first().show_status(state.status)
        with self.app.batch_update():
            self.redraw(state, changed if not force else set(self.PARTS) | {"status"})

    def redraw(self, state: ConsoleState, changed: set[str]) -> None:
        """Draw the parts in ``changed`` from ``state``."""

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's actions for the command palette."""
        return ()
