"""The daemon as a real process: start, attach over its real Unix socket, detach, re-attach, two
consoles at once, signals, metrics scraped over HTTP, and a second daemon refused.

Each test starts ``python -m heimdal_tui daemon --replay sample --speed max`` in a temporary data
directory and talks to it only through its socket, its signals and its HTTP port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from heimdal_tui.console.factory import make_app
from heimdal_tui.console.screens.alerts import AlertsScreen
from heimdal_tui.daemon.remote import AttachFailed, RemoteSensor
from heimdal_tui.sensor.events import AlertsEvent, NoticeEvent, SensorEvent, StatusEvent
from heimdal_tui.sensor.link import CommandError
from heimdal_tui.store import Store

SAMPLE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "home_lan_incidents.pcap"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    def __init__(self, tmp: Path, *extra: str, config_text: str = "") -> None:
        self.data_dir = tmp / "data"
        self.config = tmp / "config.toml"
        if not self.config.exists():
            self.config.write_text(config_text)
        self.socket = self.data_dir / "daemon.sock"
        self.stderr_path = tmp / f"daemon-{time.monotonic_ns()}.err"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "heimdal_tui", "daemon", "--replay", str(SAMPLE), "--speed", "max",
             "--data-dir", str(self.data_dir), "--config", str(self.config), *extra],
            stderr=self.stderr_path.open("w"), stdout=subprocess.DEVNULL,
        )  # fmt: skip

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.process.returncode}): {self.stderr}")
            if self.socket.exists():
                try:
                    RemoteSensor(self.socket).close()
                    return
                except AttachFailed:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"the daemon never listened: {self.stderr}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    d.wait_ready()
    yield d
    if d.process.poll() is None:
        d.process.kill()
        d.process.wait()


class Events:
    def __init__(self, link: RemoteSensor) -> None:
        self.items: list[SensorEvent] = []
        self.lock = threading.Lock()
        link.subscribe(self.add)

    def add(self, event: SensorEvent) -> None:
        with self.lock:
            self.items.append(event)

    def alerts(self) -> dict[str, str]:
        with self.lock:
            out: dict[str, str] = {}
            for event in self.items:
                if isinstance(event, AlertsEvent):
                    if event.complete:
                        out = {}
                    out.update({a.id: a.state for a in event.alerts})
            return out

    def finished(self) -> bool:
        with self.lock:
            return any(isinstance(e, StatusEvent) and e.status.state == "finished" for e in self.items)


def _wait(predicate, timeout: float = 30.0, step: float = 0.02) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("timed out")
        time.sleep(step)
    return time.monotonic() - started


def test_attach_detach_reattach_and_two_consoles(daemon):
    first = RemoteSensor(daemon.socket)
    second = RemoteSensor(daemon.socket)
    one, two = Events(first), Events(second)
    _wait(lambda: one.finished() and two.finished())
    _wait(lambda: len(one.alerts()) >= 10)
    assert one.alerts() == two.alerts()
    alert_id = next(iter(one.alerts()))
    assert first.call("acknowledge", ids=[alert_id])["done"] == [alert_id]
    # The other console hears of it within a second.
    took = _wait(lambda: two.alerts().get(alert_id) == "acknowledged", timeout=5)
    assert took < 1.0
    with pytest.raises(CommandError, match="no such alert"):
        first.call("resolve", ids=["nope"])
    first.close()  # detach: monitoring goes on
    assert daemon.process.poll() is None
    assert second.call("info")["source"].startswith("replay of home_lan_incidents.pcap")
    again = RemoteSensor(daemon.socket)  # re-attach: everything that happened is there
    three = Events(again)
    _wait(lambda: three.alerts().get(alert_id) == "acknowledged", timeout=5)
    again.close()
    second.close()


def test_the_socket_is_for_the_daemons_user_and_group_only(daemon):
    mode = stat.S_IMODE(daemon.socket.stat().st_mode)
    assert mode == 0o660
    assert stat.S_IMODE(daemon.data_dir.stat().st_mode) & 0o007 == 0
    assert stat.S_IMODE((daemon.data_dir / "heimdal.db").stat().st_mode) & 0o007 == 0


def test_a_console_attached_to_the_daemon_triages_by_keyboard(daemon):
    link = RemoteSensor(daemon.socket)
    observer = RemoteSensor(daemon.socket)
    seen = Events(observer)
    app = make_app(link, attached=True)

    async def run() -> str:
        async with app.run_test(size=(100, 30)) as pilot:
            while not (app.state.status and app.state.status.state == "finished" and app.state.alerts):
                await asyncio.sleep(0.05)
            await pilot.press("3")
            await pilot.pause(0.5)
            screen = app.screen
            assert isinstance(screen, AlertsScreen)
            key = screen.table.cursor_key
            assert key is not None
            await pilot.press("a")
            while app.state.alerts[key].state != "acknowledged":
                await asyncio.sleep(0.05)
            return key

    key = asyncio.run(run())
    _wait(lambda: seen.alerts().get(key) == "acknowledged", timeout=5)
    link.close()
    observer.close()


def test_sigterm_flushes_and_exits_zero_within_five_seconds(daemon):
    link = RemoteSensor(daemon.socket)
    events = Events(link)
    _wait(events.finished)
    link.close()
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5.0
    assert not daemon.socket.exists()
    store = Store.open(daemon.data_dir)
    try:
        assert store.all_baselines(), "baselines were not flushed to the store"
        assert store.count_alerts() >= 10
    finally:
        store.close()


def test_an_attached_console_hears_when_the_daemon_goes(daemon):
    link = RemoteSensor(daemon.socket)
    events = Events(link)
    _wait(events.finished)
    daemon.stop()
    _wait(lambda: any(isinstance(e, NoticeEvent) and "daemon" in e.text for e in events.items), timeout=10)
    with pytest.raises(CommandError):
        link.call("info")


def test_sighup_reloads_the_configuration(daemon):
    link = RemoteSensor(daemon.socket)
    assert link.call("thresholds")["port_scan"]["fields"][0]["value"] is True
    daemon.config.write_text("[detectors.port_scan]\nenabled = false\n")
    daemon.process.send_signal(signal.SIGHUP)
    _wait(lambda: link.call("thresholds")["port_scan"]["fields"][0]["value"] is False, timeout=10, step=0.2)
    daemon.config.write_text("[detectors.port_scan]\nenabled = 'maybe'\n")
    daemon.process.send_signal(signal.SIGHUP)
    _wait(lambda: "not reloaded" in daemon.stderr, timeout=10, step=0.2)
    assert daemon.process.poll() is None, "a broken configuration stopped the daemon"
    assert link.call("thresholds")["port_scan"]["fields"][0]["value"] is False
    link.close()


def test_metrics_are_scraped_over_http(tmp_path):
    port = _free_port()
    d = Daemon(tmp_path, "--metrics", str(port))
    try:
        d.wait_ready()
        link = RemoteSensor(d.socket)
        events = Events(link)
        _wait(events.finished)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        link.close()
        metrics = {
            line.split(" ")[0]: line.split(" ")[-1] for line in text.splitlines() if line and line[0] != "#"
        }
        assert float(metrics["heimdal_packets_total"]) == 22_478
        assert float(metrics["heimdal_devices"]) == 9
        assert float(metrics['heimdal_drops_total{where="buffer"}']) == 0
        assert any(k.startswith('heimdal_alerts{kind="port_scan"') for k in metrics)
        assert float(metrics["heimdal_sync_configured"]) == 0
        assert float(metrics["process_resident_memory_bytes"]) > 10_000_000
        assert "process_cpu_seconds_total" in metrics
    finally:
        assert d.stop() == 0


def test_a_second_daemon_for_the_same_data_dir_is_refused(daemon, tmp_path):
    other = Daemon(tmp_path)
    assert other.process.wait(timeout=30) == 1
    assert "already runs" in other.stderr and "--attach" in other.stderr
    assert daemon.process.poll() is None


def test_bad_metrics_address_is_a_clear_error(tmp_path):
    d = Daemon(tmp_path, "--metrics", "localhost:notaport")
    assert d.process.wait(timeout=30) == 1
    assert "port must be a number" in d.stderr
    assert not os.path.exists(d.socket)


def test_doctor_asks_the_running_daemon_how_it_is(daemon):
    result = subprocess.run(
        [sys.executable, "-m", "heimdal_tui", "doctor", "--data-dir", str(daemon.data_dir), "--config", str(daemon.config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["daemon:"])
    assert "running" in line and "replay of home_lan_incidents.pcap" in line, result.stdout
