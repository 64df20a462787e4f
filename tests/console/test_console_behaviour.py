"""Pilot tests of the console's behaviour: alerts arriving live never move the cursor, threshold
edits apply and persist, themes switch and persist, bad theme files fall back, hostile names from
the network are shown literally, and every screen answers its keys.
"""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from heimdal_tui.console.factory import make_local_console
from heimdal_tui.console.screens.alerts import AlertsScreen
from heimdal_tui.console.screens.devices import DevicesScreen
from heimdal_tui.console.screens.help import HelpScreen
from heimdal_tui.console.screens.thresholds import ThresholdsScreen
from heimdal_tui.console.themes import load_themes
from heimdal_tui.sensor.build import SensorSpec
from tests.console.conftest import INCIDENTS, settle

REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"


async def _until(predicate, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_arriving_alerts_never_move_the_cursor_and_show_a_marker(tmp_path):
    """A paced replay (100x) raises alerts while the operator works; p pauses it while the operator
    scrolls away from the top, p again lets the rest of the incidents arrive."""
    config = tmp_path / "config.toml"
    config.write_text("")
    app, built = make_local_console(SensorSpec(replay=(str(INCIDENTS),), speed=100.0, config_path=config))
    built.session.start()

    async def run() -> None:
        async with app.run_test(size=(80, 12)) as pilot:
            await pilot.press("3")
            await _until(lambda: len(app.state.alerts) >= 8, timeout=60)
            await pilot.press("p")
            await _until(lambda: app.state.status is not None and app.state.status.state == "paused")
            screen = app.screen
            assert isinstance(screen, AlertsScreen)
            table = screen.table
            # The redraw that shows them waits until the operator stops typing (TYPING_QUIET).
            await _until(lambda: table.row_count == len(app.state.alerts) >= 8)
            for _ in range(table.row_count - 1):  # to the oldest: the view scrolls away from the top
                await pilot.press("down")
            assert table.scroll_y > 0
            chosen = table.cursor_key
            before = len(app.state.alerts)
            await pilot.press("p")
            await _until(lambda: len(app.state.alerts) > before, timeout=60)
            # Drawn by the next redraw (it waits while the operator types: see TYPING_QUIET).
            await _until(lambda: screen.new_above > 0)
            assert table.cursor_key == chosen, "new alerts moved the operator's cursor"
            assert screen.new_above > 0
            marker = screen.query_one("#new-marker")
            assert "hidden" not in marker.classes and "new above" in str(marker.render())
            await pilot.press("p")  # hold the replay so "the newest" stays put
            await _until(
                lambda: app.state.status is not None and app.state.status.state in ("paused", "finished")
            )
            await pilot.pause(0.4)
            await pilot.press("g")
            await pilot.pause(0.4)
            assert screen.new_above == 0 and "hidden" in marker.classes
            assert table.cursor_row == 0 and table.scroll_y == 0

    try:
        asyncio.run(run())
    finally:
        built.cleanup()


def test_threshold_edit_applies_now_and_persists(make_console):
    console = make_console()
    app, engine = console.app, console.built.session.engine

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("6")
            await _until(lambda: isinstance(app.screen, ThresholdsScreen) and app.screen.settings)
            screen = app.screen
            # Down the detector list to port_scan, then into its form.
            while screen.kind != "port_scan":
                await pilot.press("down")
                await pilot.pause(0.05)
            await pilot.press("enter")  # focus the first field (enabled)
            await _until(lambda: app.focused is not None and app.focused.id == "field-enabled")
            await pilot.press("space")  # switch it off
            await _until(lambda: "0 with these" in str(screen.query_one("#whatif").render()))
            await pilot.press("ctrl+s")
            await _until(lambda: engine.detectors["port_scan"].settings.enabled is False)

    asyncio.run(run())
    saved = tomllib.loads(console.config_path.read_text())
    assert saved["detectors"]["port_scan"]["enabled"] is False


def test_threshold_values_are_checked_as_typed(make_console):
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("6")
            await _until(lambda: isinstance(app.screen, ThresholdsScreen) and app.screen.settings)
            screen = app.screen
            while screen.kind != "port_scan":
                await pilot.press("down")
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            field = next(f for f in screen.settings["port_scan"]["fields"] if f["type"] in ("int", "float"))
            box = screen.query_one(f"#field-{field['key']}")
            box.value = "lots"
            await _until(lambda: "not a" in str(screen.query_one("#whatif").render()) or screen._problems)
            assert field["key"] in screen._problems
            box.value = str(10**12)  # past every maximum
            await _until(lambda: "between" in str(screen.query_one("#whatif").render())
                         or "at most" in str(screen.query_one("#whatif").render()))  # fmt: skip

    asyncio.run(run())


def test_theme_switch_persists_in_the_config(make_console):
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            assert app.theme == "heimdal-dark"
            assert {"heimdal-dark", "heimdal-light", "heimdal-high-contrast"} <= set(app.available_themes)
            app.theme = "heimdal-high-contrast"
            await pilot.pause(0.3)

    asyncio.run(run())
    assert tomllib.loads(console.config_path.read_text())["ui"]["theme"] == "heimdal-high-contrast"
    again = make_console(config_text=console.config_path.read_text())

    async def reopen() -> None:
        async with again.app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            assert again.app.theme == "heimdal-high-contrast"

    asyncio.run(reopen())


def test_a_bad_theme_file_gives_a_notification_and_the_default(make_console, tmp_path):
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\nsparkle = true\n')
    (themes / "garbage.toml").write_bytes(b"\xff\xfe[[[")
    (themes / "mine.toml").write_text('name = "mine"\nprimary = "#ff8800"\n')
    loaded, problems = load_themes([themes])
    assert [t.name for t in loaded] == ["mine"]
    messages = " ".join(str(p) for p in problems)
    assert "primary" in messages and "sparkle" in messages and "garbage.toml" in messages
    console = make_console(config_text='[ui]\ntheme = "broken"\n', theme_dirs=[REPO_THEMES, themes])
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            assert app.theme == "heimdal-dark"
            notes = [n.message for n in app._notifications]
            assert any("broken.toml" in n for n in notes) and any("not available" in n for n in notes)

    asyncio.run(run())


def _hostile_capture(path: Path) -> list[bytes]:
    """DHCP requests whose hostnames are markup, terminal escapes, an OSC title change, 600 bytes,
    and invalid UTF-8: every kind of name a peer can send."""
    names = [
        b"[bold red]pwned[/]",
        b"\x1b[2J\x1b[31mred",
        b"\x1b]0;owned\x07title",
        b"L" * 250,
        b"caf\xe9\xff\xfe",
    ]
    frames = []
    for i, name in enumerate(names):
        mac = f"02:00:00:00:00:{i + 1:02x}"
        frames.append(
            Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
            / IP(src=f"192.168.7.{i + 10}", dst="255.255.255.255")
            / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")) + b"\x00" * 10, xid=i + 1)
            / DHCP(options=[("message-type", "request"), ("hostname", name), "end"])
        )
    for t, frame in enumerate(frames):
        frame.time = 1_772_438_400 + t
    wrpcap(str(path), frames)
    return names


def test_hostile_names_are_shown_literally(make_console, tmp_path):
    capture = tmp_path / "hostile.pcap"
    _hostile_capture(capture)
    console = make_console(capture=capture)
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(160, 30)) as pilot:
            await _until(lambda: len(app.state.devices) >= 5 and app.state.status.state == "finished")
            await pilot.press("2")
            await pilot.pause(0.8)
            screen = app.screen
            assert isinstance(screen, DevicesScreen)
            table = screen.table
            names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
            shown = "\n".join(names)
            assert "[bold red]pwned[/]" in shown  # the markup is text, not style
            assert "\x1b" not in shown and "\x07" not in shown
            assert "\\x1b[2J" in shown and "\\x1b]0;owned\\x07title" in shown
            assert any(n.startswith("L" * 10) and len(n) <= 255 for n in names)
            assert "caf\\xe9" in shown
            # What reaches the terminal holds no escape from the network either.
            export = app.export_screenshot()
            assert "owned\x07" not in export and "\x1b]0;" not in export

    asyncio.run(run())


def test_help_lists_every_key_of_the_screen(make_console):
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("3", "question_mark")
            await pilot.pause(0.3)
            assert isinstance(app.screen, HelpScreen)
            actions = {action for _key, action, _detail in app.screen.keys}
            assert {"Ack", "Resolve", "False +", "Snooze", "Select", "Filter", "Help", "Alerts"} <= actions
            await pilot.press("escape")
            assert isinstance(app.screen, AlertsScreen)

    asyncio.run(run())


def test_every_action_is_in_the_command_palette(make_console):
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("3")
            await pilot.pause(0.3)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Show Overview", "Show Thresholds", "Alerts: Acknowledge", "Alerts: Mark false positive",
                    "Alerts: Snooze", "Alerts: Filter", "Pause / resume the replay"} <= titles  # fmt: skip
            await pilot.press("2")
            await pilot.pause(0.3)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert "Devices: Filter" in titles and "Alerts: Acknowledge" not in titles

    asyncio.run(run())


def test_periodic_redraw_waits_while_the_operator_types(make_console):
    """Keys first: the four-a-second redraw of the visible screen skips its turn within
    TYPING_QUIET of a key and draws again once the operator pauses."""
    from heimdal_tui.console import app as app_module

    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("2")
            screen = app.screen
            assert isinstance(screen, DevicesScreen)
            drawn: list[int] = []
            original = screen.refresh_from

            def counted(state, force: bool = False) -> None:
                drawn.append(1)
                original(state, force)

            screen.refresh_from = counted  # type: ignore[method-assign]
            await pilot.press("down")
            app._refresh_visible()
            assert drawn == []  # just typed: the redraw waits
            await pilot.pause(app_module.TYPING_QUIET + app_module.REFRESH_INTERVAL + 0.2)
            assert drawn  # the operator paused: the timer drew the screen again

    asyncio.run(run())
