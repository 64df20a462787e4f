"""Screen switches answer at once: a screen shown before is painted as it was, without Textual's
50 ms delay_update and before any redraw of its rows; what changed while it was hidden is drawn
right after that paint (and not while it is hidden). Full garbage collections are held back while
the console runs, and handed back to CPython when it stops."""

from __future__ import annotations

import asyncio
import dataclasses
import gc

from textual.app import App

from heimdal_tui.console.idle_gc import HELD_BACK
from heimdal_tui.console.screens.devices import DevicesScreen
from heimdal_tui.console.screens.overview import OverviewScreen
from heimdal_tui.sensor.events import DevicesEvent
from tests.console.conftest import settle

RENAMED = "renamed-while-hidden"


async def _until(predicate, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def test_a_screen_shown_again_paints_first_and_draws_what_changed_after(make_console, monkeypatch):
    console = make_console()
    app = console.app
    delays: list[float] = []
    original_delay = App.delay_update

    def counted_delay(self: App, delay: float = 0.05) -> None:
        delays.append(delay)
        original_delay(self, delay)

    monkeypatch.setattr(App, "delay_update", counted_delay)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            assert gc.get_threshold()[2] == HELD_BACK
            await settle(app, pilot)
            await pilot.press("2")
            await _until(lambda: isinstance(app.screen, DevicesScreen) and app.screen.table.row_count > 0)
            devices = app.screen
            assert isinstance(devices, DevicesScreen)
            assert delays, "a first visit composes the screen behind Textual's delay_update"
            await pilot.press("1")
            await _until(lambda: isinstance(app.screen, OverviewScreen))

            # While the devices screen is hidden, a device is renamed: nothing is drawn there.
            row = next(iter(app.state.devices.values()))
            key = str(row.key)
            renamed = dataclasses.replace(row, name=RENAMED)
            app.state.apply(
                DevicesEvent(tuple(renamed if r.key == row.key else r for r in app.state.devices.values()))
            )
            app._refresh_visible()
            assert str(devices.table.get_cell(key, "name")) == row.name

            events: list[str] = []
            display = app._display
            redraw = devices.redraw

            def painted(screen, renderable) -> None:
                # What a terminal would be sent (inside a batch, or with nothing to draw, nothing).
                if renderable is not None and not app._batch_count:
                    events.append(f"paint {type(screen).__name__}")
                display(screen, renderable)

            def redrawn(state, changed) -> None:
                events.append("redraw devices")
                redraw(state, changed)

            app._display = painted
            devices.redraw = redrawn  # type: ignore[method-assign]
            delays.clear()
            await pilot.press("2")
            await _until(lambda: str(devices.table.get_cell(key, "name")) == RENAMED)
            assert app.screen is devices
            assert delays == [], "a screen shown before needs no delay_update"
            assert "paint DevicesScreen" in events and "redraw devices" in events
            assert events.index("paint DevicesScreen") < events.index("redraw devices"), events
        assert gc.get_threshold()[2] != HELD_BACK

    asyncio.run(run())


def test_a_screen_switched_away_before_its_redraw_draws_nothing(make_console):
    """Keys 2 and 1 in quick succession: the devices screen's deferred redraw finds it hidden."""
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("2")
            await _until(lambda: isinstance(app.screen, DevicesScreen) and app.screen.table.row_count > 0)
            devices = app.screen
            assert isinstance(devices, DevicesScreen)
            await pilot.press("1")
            await _until(lambda: isinstance(app.screen, OverviewScreen))
            row = next(iter(app.state.devices.values()))
            app.state.apply(
                DevicesEvent(
                    tuple(
                        dataclasses.replace(r, name=RENAMED) if r.key == row.key else r
                        for r in app.state.devices.values()
                    )
                )
            )
            drawn: list[str] = []
            redraw = devices.redraw

            def redrawn(state, changed) -> None:
                drawn.append("devices")
                redraw(state, changed)

            devices.redraw = redrawn  # type: ignore[method-assign]
            app.action_show_screen("devices")
            app.action_show_screen("overview")  # before the devices screen's first paint
            overview = app.screen
            assert isinstance(overview, OverviewScreen)
            await pilot.pause()
            await _until(lambda: not overview._callbacks)  # every after-paint callback has run
            assert drawn == []
            assert str(devices.table.get_cell(str(row.key), "name")) == row.name

    asyncio.run(run())
