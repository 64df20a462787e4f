"""Pilot tests: the operator's whole triage flow, by keyboard, on a real sensor session.

Each test drives the console as an operator would (keys only) and checks both what the console
shows and what the engine now holds: the alert's state, the baseline the false positive fed, the
store's audit trail.
"""

from __future__ import annotations

import asyncio

from heimdal_tui.console.screens.alert_detail import AlertDetailScreen
from heimdal_tui.console.screens.alerts import AlertsScreen
from heimdal_tui.console.screens.prompt import Prompt
from tests.console.conftest import settle


async def _until(predicate, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def _to_alert(pilot, app, kind: str) -> str:
    """Open the alerts screen and move the cursor onto the first alert of ``kind``."""
    await pilot.press("3")
    await pilot.pause(0.3)
    screen = app.screen
    assert isinstance(screen, AlertsScreen)
    table = screen.table
    await pilot.press("g")
    for _ in range(table.row_count):
        key = table.cursor_key
        if key and app.state.alerts[key].kind == kind:
            return key
        await pilot.press("down")
    raise AssertionError(f"no {kind} alert on the alerts screen")


def test_acknowledge_then_resolve_by_keyboard(make_console):
    console = make_console()
    app, engine = console.app, console.built.session.engine
    acted: list[str] = []

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            alert_id = await _to_alert(pilot, app, "port_scan")
            acted.append(alert_id)
            await pilot.press("a")
            await _until(lambda: app.state.alerts[alert_id].state == "acknowledged")
            assert engine.alerts.alerts[alert_id].state.value == "acknowledged"
            assert app.screen.table.cursor_key == alert_id, "acknowledging moved the cursor"
            await pilot.press("r")
            await _until(lambda: app.state.alerts[alert_id].state == "resolved")
            # Resolved alerts leave the default (active) view.
            await pilot.pause(0.5)
            assert alert_id not in [str(k.value) for k in app.screen.table.rows]

    asyncio.run(run())
    rows = console.built.session.store.audit(alert_id=acted[0])[::-1]  # the store lists newest first
    assert [(r["action"], r["detail"]["to"]) for r in rows] == [
        ("set_state", "acknowledged"),
        ("set_state", "resolved"),
    ]


def test_false_positive_asks_a_reason_and_feeds_the_baseline(make_console):
    console = make_console()
    app, engine = console.app, console.built.session.engine
    acted: list[str] = []

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            alert_id = await _to_alert(pilot, app, "geo_violation")
            acted.append(alert_id)
            device = app.state.alerts[alert_id].device_key
            assert "RU" not in engine.book.baselines[device].countries
            await pilot.press("f")
            await pilot.pause(0.2)
            assert isinstance(app.screen, Prompt)
            await pilot.press("enter")  # an empty reason is refused, the prompt stays
            await pilot.pause(0.2)
            assert isinstance(app.screen, Prompt)
            await pilot.press(*"IPTV app the family uses")
            await pilot.press("enter")
            await _until(lambda: app.state.alerts[alert_id].state == "false_positive")
            assert "RU" in engine.book.baselines[device].countries

    asyncio.run(run())
    rows = console.built.session.store.audit(alert_id=acted[0])
    assert rows[0]["detail"]["to"] == "false_positive"
    assert rows[0]["detail"]["reason"] == "IPTV app the family uses"


def test_snooze_asks_how_long_and_refuses_nonsense(make_console):
    console = make_console()
    app, engine = console.app, console.built.session.engine

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            alert_id = await _to_alert(pilot, app, "dns_tunnel")
            await pilot.press("s")
            await pilot.pause(0.2)
            prompt = app.screen
            assert isinstance(prompt, Prompt)
            await pilot.press("ctrl+a", "ctrl+k", *"whenever", "enter")
            await pilot.pause(0.2)
            assert app.screen is prompt, "a bad duration was accepted"
            await pilot.press("ctrl+a", "ctrl+k", *"3h", "enter")
            await _until(lambda: len(engine.alerts.suppressions) == 1)
            rule = engine.alerts.suppressions[0]
            assert rule.kind == "dns_tunnel" and rule.until == engine.now + 3 * 3600
            del alert_id

    asyncio.run(run())


def test_bulk_selection_acknowledges_several(make_console):
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("3")
            await pilot.pause(0.3)
            screen = app.screen
            assert isinstance(screen, AlertsScreen)
            await pilot.press("g", "space", "space", "space")
            assert len(screen.selected) == 3
            chosen = set(screen.selected)
            await pilot.press("a")
            await _until(lambda: all(app.state.alerts[i].state == "acknowledged" for i in chosen))
            assert not screen.selected

    asyncio.run(run())


def test_enter_shows_the_evidence_beside_the_baseline(make_console):
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await _to_alert(pilot, app, "volume_spike")
            await pilot.press("enter")
            await _until(lambda: isinstance(app.screen, AlertDetailScreen) and app.screen.detail is not None)
            screen = app.screen
            items = [
                str(screen.query_one("#evidence").get_row_at(i)[0])
                for i in range(screen.query_one("#evidence").row_count)
            ]
            baseline = [i for i in items if "baseline" in i]
            assert baseline, items
            # The baseline figure sits right before the observed one it is compared with.
            assert items.index(baseline[0]) + 1 < len(items)
            await pilot.press("a")
            await _until(
                lambda: screen.detail is not None and screen.detail["alert"]["state"] == "acknowledged"
            )
            await pilot.press("escape")
            assert isinstance(app.screen, AlertsScreen)

    asyncio.run(run())


def test_filter_narrows_and_explains(make_console):
    console = make_console()
    app = console.app

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("3")
            await pilot.pause(0.3)
            screen = app.screen
            assert isinstance(screen, AlertsScreen)
            everything = screen.table.row_count
            await pilot.press("slash", *"sev:bogus", "enter")
            await pilot.pause(0.2)
            assert isinstance(app.screen, Prompt), "a bad filter was accepted"
            await pilot.press("ctrl+a", "ctrl+k", *"sev:high,critical", "enter")
            await pilot.pause(0.5)
            shown = [app.state.alerts[str(k.value)] for k in screen.table.rows]
            assert 0 < len(shown) < everything
            assert {a.severity for a in shown} <= {"high", "critical"}

    asyncio.run(run())
