"""HeimdalApp: six screens on one SensorLink, keyboard first, made for 80x24 over SSH.

Events arrive from the sensor's thread as SensorUpdate messages (post_message is thread-safe; a
newer snapshot replaces an older one still queued) and are merged into one ConsoleState. A timer
redraws the visible screen from it at most four times a second; hidden screens draw nothing until
shown. Commands go back through the link from worker threads, so the UI never waits on the sensor.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from heimdal_tui.config import Config, ConfigError, save_config
from heimdal_tui.console.idle_gc import IdleCollector
from heimdal_tui.console.messages import CommandDone, SensorUpdate
from heimdal_tui.console.screens.alerts import AlertsScreen
from heimdal_tui.console.screens.base import SensorScreen
from heimdal_tui.console.screens.devices import DevicesScreen
from heimdal_tui.console.screens.drift import DriftScreen
from heimdal_tui.console.screens.help import HelpScreen
from heimdal_tui.console.screens.overview import OverviewScreen
from heimdal_tui.console.screens.sync import SyncScreen
from heimdal_tui.console.screens.thresholds import ThresholdsScreen
from heimdal_tui.console.state import ConsoleState
from heimdal_tui.console.themes import DEFAULT_THEME, load_themes
from heimdal_tui.console.widgets.key_bar import KeyBar
from heimdal_tui.sensor.events import SensorEvent
from heimdal_tui.sensor.link import CommandError, SensorLink

REFRESH_INTERVAL = 0.25  # at most four redraws a second
# While the operator moves around, the periodic redraw waits (keys first): it resumes this long
# after the last such key. A screen shown by a key draws its data as it appears.
TYPING_QUIET = 0.4
SCREENS: tuple[tuple[str, str, str], ...] = (
    ("1", "overview", "Overview"),
    ("2", "devices", "Devices"),
    ("3", "alerts", "Alerts"),
    ("4", "drift", "Drift"),
    ("5", "sync", "Sync"),
    ("6", "thresholds", "Thresholds"),
)


# Keys that only move around (the cursor, the screens): while they come, redraws wait. A key that
# acts (acknowledge, resolve, filter...) wants its result drawn at once, so it does not hold them.
NAVIGATION_KEYS = frozenset(
    {"up", "down", "left", "right", "pageup", "pagedown", "home", "end", "tab", "shift+tab"}
    | {key for key, _, _ in SCREENS}
)


# The six screen keys share one footer entry ("1-6 screens"): 80 columns leave room for the
# keys of the screen in view.
SCREEN_KEYS = Binding.Group("Screens", compact=True)


class HeimdalApp(App[None]):
    CSS_PATH = "heimdal.tcss"
    TITLE = "Heimdal"
    ENABLE_COMMAND_PALETTE = True
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "overview": OverviewScreen,
        "devices": DevicesScreen,
        "alerts": AlertsScreen,
        "drift": DriftScreen,
        "sync": SyncScreen,
        "thresholds": ThresholdsScreen,
    }
    DEFAULT_MODE = "overview"
    BINDINGS = [
        *(
            Binding(key, f"show_screen('{mode}')", title, id=f"screen.{mode}", tooltip=f"Show the {title} screen",
                    group=SCREEN_KEYS)
            for key, mode, title in SCREENS
        ),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help", tooltip="Every key, with what it does"),
        Binding("p", "replay('toggle')", "Pause", show=False, id="replay.toggle",
                tooltip="Pause or resume the replay"),
        Binding("plus,equals_sign", "replay('faster')", "Faster", key_display="+", show=False,
                id="replay.faster", tooltip="Replay faster"),
        Binding("minus", "replay('slower')", "Slower", key_display="-", show=False,
                id="replay.slower", tooltip="Replay slower"),
        Binding("full_stop", "replay('step')", "Step", key_display=".", show=False,
                id="replay.step", tooltip="Pause and replay the next 100 frames"),
        Binding("q", "quit", "Quit", show=False, id="app.quit", tooltip="Leave the console"),
    ]  # fmt: skip

    def __init__(
        self,
        link: SensorLink,
        *,
        config: Config | None = None,
        config_path: Path | None = None,
        theme_dirs: list[Path] | None = None,
        attached: bool = False,
    ) -> None:
        super().__init__()
        self.link = link
        self.state = ConsoleState()
        self.config = config or Config()
        self.config_path = config_path
        self.attached = attached
        self._unsubscribe: Callable[[], None] | None = None
        self._theme_dirs = theme_dirs
        self._theme_ready = False
        self._last_key = float("-inf")  # monotonic time of the last navigation key (TYPING_QUIET)
        self._last_input = float("-inf")  # ... and of any key (full collections wait for a pause)
        self.collector = IdleCollector()
        self._instant_switch = False  # see action_show_screen

    # -- start and stop ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._load_themes()
        self._unsubscribe = self.link.subscribe(self._post_event)
        self.collector.start()
        self.set_interval(REFRESH_INTERVAL, self._refresh_visible, name="refresh")

    def _post_event(self, event: SensorEvent) -> None:
        # Called on the sensor's (or the socket reader's) thread: post_message is thread-safe.
        self.post_message(SensorUpdate(event))

    def on_unmount(self) -> None:
        self.collector.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _load_themes(self) -> None:
        themes, problems = load_themes(self._theme_dirs)
        for theme in themes:
            self.register_theme(theme)
        for problem in problems:
            self.notify(str(problem), title="Theme file skipped", severity="warning", timeout=10)
        wanted = self.config.ui.theme
        if wanted not in self.available_themes:
            if wanted != DEFAULT_THEME and wanted != "textual-dark":
                self.notify(f"theme {wanted!r} is not available; using the default", severity="warning")
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = wanted
        self._theme_ready = True

    def watch_theme(self, theme: str) -> None:
        if not self._theme_ready:
            return
        for screen in self.screen_stack:
            for bar in screen.query(KeyBar):
                bar.restyle()
            if isinstance(screen, SensorScreen):
                screen.refresh_from(self.state, force=True)
        self._save_theme(theme)

    def _save_theme(self, theme: str) -> None:
        if self.config.ui.theme == theme:
            return
        self.config = dataclasses.replace(self.config, ui=dataclasses.replace(self.config.ui, theme=theme))
        if self.config_path is None:
            return
        try:
            save_config(self.config, self.config_path)
        except (OSError, ConfigError) as exc:
            self.notify(f"theme not saved to {self.config_path}: {exc}", severity="warning")

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_input = time.monotonic()
            if event.key in NAVIGATION_KEYS:
                self._last_key = self._last_input
            # An in-process sensor pauses its pipeline briefly so this keypress is answered at
            # once; a daemon runs in its own process and needs no such courtesy.
            hold = getattr(self.link, "yield_to_ui", None)
            if hold is not None:
                hold()
        await super().on_event(event)

    # -- sensor events ---------------------------------------------------------------------------------
    @on(SensorUpdate)
    def _sensor_update(self, message: SensorUpdate) -> None:
        self.state.apply(message.event)

    def _refresh_visible(self) -> None:
        for notice in self.state.take_notices():
            severity = {"error": "error", "warning": "warning"}.get(notice.level, "information")
            self.notify(notice.text, severity=severity, timeout=8 if severity != "error" else 20)  # type: ignore[arg-type]
        self.collector.maybe_collect(self._last_input)
        if time.monotonic() - self._last_key < TYPING_QUIET:
            return  # the next tick after the operator pauses draws everything that came meanwhile
        screen = self.screen
        if isinstance(screen, SensorScreen):
            screen.refresh_from(self.state)

    # -- commands -------------------------------------------------------------------------------------
    def send(
        self,
        command: str,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        **args: Any,
    ) -> None:
        """Run ``command`` on the sensor in a worker thread. On the UI thread afterwards:
        ``on_done(result)``, or ``on_error(message)`` when the sensor refused (without one, the
        refusal is shown as a notification)."""
        self._call(command, args, on_done, on_error)

    @work(thread=True, exit_on_error=False, group="commands", description="sensor command")
    def _call(
        self,
        command: str,
        args: dict[str, Any],
        on_done: Callable[[Any], None] | None,
        on_error: Callable[[str], None] | None,
    ) -> None:
        try:
            result = self.link.call(command, **args)
        except CommandError as exc:
            self.post_message(CommandDone(command, error=str(exc), on_error=on_error))
            return
        self.post_message(CommandDone(command, result=result, on_done=on_done))

    @on(CommandDone)
    def _command_done(self, message: CommandDone) -> None:
        if message.error is not None:
            if message.on_error is not None:
                message.on_error(message.error)
            else:
                self.notify(
                    message.error, title=message.command.replace("_", " "), severity="error", timeout=8
                )
        elif message.on_done is not None:
            message.on_done(message.result)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "commands":
            error = event.worker.error
            self.notify(f"the sensor did not answer: {error}", severity="error", timeout=12)

    # -- actions --------------------------------------------------------------------------------------
    def action_show_screen(self, mode: str) -> None:
        if self.current_mode == mode:
            return
        # A screen shown before is composed and laid out: there is no half-built frame to hide,
        # so the switch paints at once instead of after Textual's 50 ms delay_update.
        self._instant_switch = mode in self._screen_stacks
        try:
            self.switch_mode(mode)
        finally:
            self._instant_switch = False

    def delay_update(self, delay: float = 0.05) -> None:
        if not self._instant_switch:
            super().delay_update(delay)

    def action_replay(self, action: str) -> None:
        status = self.state.status
        if status is None or status.replay is None:
            self.notify("replay controls work only while replaying a capture", severity="warning", timeout=4)
            return
        self.send("replay", action=action)

    def action_help(self) -> None:
        screen = self.screen
        keys = []
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description:
                continue
            shown = binding.key_display or self.get_key_display(binding)
            keys.append((shown, binding.description, binding.tooltip or active.tooltip or ""))
        keys.sort(key=lambda k: (len(k[0]) > 1, k[0]))
        title = str(screen.sub_title) if isinstance(screen, SensorScreen) else "console"
        self.push_screen(HelpScreen(title, keys))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, mode, title in SCREENS:
            yield SystemCommand(f"Show {title}", f"Screen {key}", lambda m=mode: self.action_show_screen(m))
        status = self.state.status
        if status is not None and status.replay is not None:
            for action, text in (("toggle", "Pause / resume the replay"), ("faster", "Replay faster"),
                                 ("slower", "Replay slower"), ("step", "Step the replay 100 frames")):  # fmt: skip
                yield SystemCommand(text, "Replay control", lambda a=action: self.action_replay(a))
        palette_commands = getattr(screen, "palette_commands", None)
        if palette_commands is not None:
            yield from palette_commands()
        yield SystemCommand("Help: every key", "The keys of this screen", self.action_help)
