"""Snapshots of every screen at 80x24 (the SSH default) and 120x40, on the sample capture's results.

The sensor really replays sample_pcaps/home_lan_incidents.pcap; its clock is frozen so the pixels
are the same on every run (see conftest.py). Update after a deliberate change with
``pytest tests/console/test_snapshots.py --snapshot-update`` and look at every changed SVG.
"""

from __future__ import annotations

import pytest

from tests.console.conftest import settle

SIZES = [(80, 24), (120, 40)]


def _before(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.4)
        await pilot.pause(0.6)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview(snap_compare, make_console, size):
    """Headline figures (packets, devices, open alerts by severity: 1 critical, 5 high, 6 medium, 8
    low), state "replay finished 100% at max", sync not configured; the traffic sparkline; the top
    talkers (the laptop first); the newest alerts, the laptop's volume spike on top."""
    assert snap_compare(make_console().app, terminal_size=size, run_before=_before())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_devices(snap_compare, make_console, size):
    """Nine devices, busiest first, with type, address, rate, last seen, open alerts (and vendor and
    drift at 120 columns); the line above says 9 of 9, sorted by rate."""
    assert snap_compare(make_console().app, terminal_size=size, run_before=_before("2"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_alerts(snap_compare, make_console, size):
    """The triage queue: 20 active alerts newest first, severity marks and labels, state, kind,
    device, time and summary (peer and count too at 120 columns); cursor on the newest."""
    assert snap_compare(make_console().app, terminal_size=size, run_before=_before("3"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_drift(snap_compare, make_console, size):
    """Drift per device, most drifted first, with its history bars and the features that moved."""
    assert snap_compare(make_console().app, terminal_size=size, run_before=_before("4"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sync(snap_compare, make_console, size):
    """Sync with Asgard not configured: an empty queue, zero counters, and what to set to turn it on."""
    assert snap_compare(make_console().app, terminal_size=size, run_before=_before("5"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_thresholds(snap_compare, make_console, size):
    """The detector list (new_device highlighted), its settings with ranges and help, and the what-if
    line for the values in force."""
    assert snap_compare(make_console().app, terminal_size=size, run_before=_before("6"))


def test_alert_detail(snap_compare, make_console):
    """The newest alert in full: severity, kind, score, state, summary, device and peer, times, and
    the evidence with each baseline figure beside the observed one; no triage history yet."""
    assert snap_compare(make_console().app, terminal_size=(80, 24), run_before=_before("3", "enter"))


def test_device_detail(snap_compare, make_console):
    """The busiest device in depth: name, type and confidence, vendor, MAC, addresses, baseline state,
    its traffic sparkline, and its baseline's destinations beside its busiest peers now."""
    assert snap_compare(make_console().app, terminal_size=(120, 40), run_before=_before("2", "enter"))


def test_help(snap_compare, make_console):
    """`?` on the alerts screen lists every key that works there with what it does."""
    assert snap_compare(make_console().app, terminal_size=(80, 24), run_before=_before("3", "question_mark"))
