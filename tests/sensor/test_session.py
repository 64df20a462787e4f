"""The sensor session: the engine in its own thread behind events and commands.

Every test runs the real pipeline and detection engine over the bundled sample capture, with a real
SQLite store in a temporary directory; nothing is mocked.
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from pathlib import Path

import pytest

from heimdal_tui.sensor.build import BuiltSession, SensorSpec, SetupError, build_session
from heimdal_tui.sensor.events import (
    AlertsEvent,
    DevicesEvent,
    DriftEvent,
    NoticeEvent,
    SensorEvent,
    StatusEvent,
    from_wire,
    to_wire,
)
from heimdal_tui.sensor.link import CommandError

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
INCIDENTS = str(SAMPLES / "home_lan_incidents.pcap")
TRUTH = json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text())


def _mac_key(name: str) -> int:
    mac = next(d["mac"] for d in TRUTH["devices"] if d["name"] == name)
    return int(mac.replace(":", ""), 16)


class Recorder:
    def __init__(self) -> None:
        self.events: list[SensorEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: SensorEvent) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: type) -> list:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError("timed out waiting for the sensor")


@pytest.fixture
def finished(tmp_path):
    """A session that has replayed the whole incident capture, with a recorder subscribed."""
    config = tmp_path / "config.toml"
    config.write_text("")
    built = build_session(
        SensorSpec(replay=(INCIDENTS,), speed=None, config_path=config, data_dir=tmp_path / "data")
    )
    recorder = Recorder()
    built.session.subscribe(recorder)
    built.session.start()
    assert built.session.finished.wait(60), "the replay did not finish"
    recorder.wait_for(lambda: any(e.status.state == "finished" for e in recorder.of(StatusEvent)))
    yield built, recorder
    built.cleanup()


def _alert(built: BuiltSession, kind: str):
    found = [a for a in built.session.engine.alerts.alerts.values() if a.kind == kind]
    assert found, f"no {kind} alert"
    return found[0]


def test_a_replay_publishes_status_devices_alerts_and_drift(finished):
    _built, recorder = finished
    status = recorder.of(StatusEvent)[-1].status
    assert status.state == "finished" and status.mode == "replay"
    assert status.frames == 22_478 and status.devices == 9
    assert status.replay is not None and status.replay.fraction == 1.0
    assert sum(status.alerts_open.values()) == status.alerts_total > 0
    assert status.store == "ok"
    devices = recorder.of(DevicesEvent)[-1].rows
    assert {d.name for d in devices} >= {"DiskStation", "LAPTOP-J4R8TQ2N", "ESP_3A7F21"}
    alerts = {a.id: a for e in recorder.of(AlertsEvent) for a in e.alerts}
    assert {a.kind for a in alerts.values()} >= {"port_scan", "arp_spoof", "dns_tunnel", "brute_force"}
    assert recorder.of(DriftEvent)[-1].rows, "no device drift was scored"
    assert any(e.level == "information" and "finished" in e.text for e in recorder.of(NoticeEvent))


def test_events_are_never_one_per_packet(finished):
    _built, recorder = finished
    # 22,478 frames, but statuses come at most four times a second and devices about once a second.
    assert len(recorder.events) < 200


def test_every_event_survives_json_and_back(finished):
    _built, recorder = finished
    kinds = set()
    for event in recorder.events:
        wire = json.loads(json.dumps(to_wire(event)))
        assert from_wire(wire) == event
        kinds.add(wire["type"])
    assert kinds >= {"status", "devices", "alerts", "drift", "notice"}
    with pytest.raises(ValueError):
        from_wire({"type": "nonsense"})


def test_a_new_subscriber_gets_the_whole_state_first(finished):
    built, _ = finished
    late = Recorder()
    built.session.subscribe(late)
    late.wait_for(lambda: late.of(AlertsEvent))
    complete = late.of(AlertsEvent)[0]
    assert complete.complete and len(complete.alerts) == len(built.session.engine.alerts.alerts)
    assert late.of(StatusEvent) and late.of(DevicesEvent)


def test_triage_commands_change_alerts_and_publish_them(finished):
    built, recorder = finished
    session = built.session
    scan = _alert(built, "port_scan")
    assert session.call("acknowledge", ids=[scan.id]) == {"done": [scan.id], "missing": []}
    recorder.wait_for(lambda: any(a.id == scan.id and a.state == "acknowledged"
                                  for e in recorder.of(AlertsEvent) for a in e.alerts))  # fmt: skip
    session.call("resolve", ids=[scan.id], reason="plug reflashed")
    assert session.engine.alerts.alerts[scan.id].state.value == "resolved"
    detail = session.call("alert_detail", id=scan.id)
    assert [h["action"] for h in detail["history"]] == ["acknowledge", "resolve"]
    assert detail["json"]["state"] == "resolved"
    with pytest.raises(CommandError, match="no such alert"):
        session.call("acknowledge", ids=["nope"])


def test_false_positive_needs_a_reason_and_teaches_the_baseline(finished):
    built, _ = finished
    session = built.session
    geo = _alert(built, "geo_violation")
    with pytest.raises(CommandError, match="reason"):
        session.call("false_positive", ids=[geo.id], reason="  ")
    result = session.call("false_positive", ids=[geo.id], reason="new IPTV app")
    assert result["learned"][geo.id]
    base = session.engine.book.baselines[geo.device.key]
    assert "RU" in base.countries
    stored = built.session.store.load_baseline(geo.device.key)
    assert "RU" in stored["countries"]


def test_snooze_takes_durations_as_people_write_them(finished):
    built, _ = finished
    session = built.session
    tunnel = _alert(built, "dns_tunnel")
    result = session.call("snooze", ids=[tunnel.id], duration="2h")
    assert result["until"][tunnel.id] == pytest.approx(session.engine.now + 7200)
    for bad in ("soon", "0", -5):
        with pytest.raises(CommandError):
            session.call("snooze", ids=[tunnel.id], duration=bad)


def test_device_commands(finished):
    built, recorder = finished
    session = built.session
    laptop = _mac_key("laptop")
    detail = session.call("device_detail", key=laptop)
    assert detail["identity"]["hostname"] == "LAPTOP-J4R8TQ2N"
    assert detail["baseline"]["mature"] and detail["baseline"]["destinations"]
    assert any(a["kind"] == "dns_tunnel" for a in detail["alerts"])
    hostile = "[b]x[/b]\x1b]0;pwned\x07\x1b[31m" + "A" * 200
    label = session.call("label_device", key=laptop, label=hostile)["label"]
    assert "\x1b" not in label and "\x07" not in label and len(label) <= 64
    assert "[b]x[/b]" in label  # kept literally: the console never reads it as markup
    recorder.wait_for(
        lambda: any(d.key == laptop and d.label == label for d in recorder.of(DevicesEvent)[-1].rows)
    )
    assert session.call("freeze_learning", key=laptop, frozen=True)["frozen"] is True
    assert session.engine.book.baselines[laptop].frozen
    assert session.call("reset_baseline", key=laptop, reason="reinstalled")["reset"]
    assert laptop not in session.engine.book.baselines
    with pytest.raises(CommandError, match="no device"):
        session.call("device_detail", key=12345)


def test_labels_survive_a_restart_with_the_same_store(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("")
    spec = SensorSpec(replay=(INCIDENTS,), speed=None, config_path=config, data_dir=tmp_path / "data")
    first = build_session(spec)
    first.session.start()
    assert first.session.finished.wait(60)
    first.session.call("label_device", key=_mac_key("nas"), label="Backup box")
    first.cleanup()
    second = build_session(spec)
    try:
        assert second.session.labels[_mac_key("nas")] == "Backup box"
        assert second.session.engine.book.baselines, "baselines were not restored from the store"
    finally:
        second.cleanup()


def test_accept_drift_merges_into_the_baseline(finished):
    built, _ = finished
    session = built.session
    tv = _mac_key("tv")
    assert tv in session.engine.drift.history
    merged = session.call("accept_drift", key=tv, reason="new IPTV app")["merged"]
    assert "RU" in merged["countries"]
    assert "RU" in session.engine.book.baselines[tv].countries


def test_thresholds_what_if_and_save(finished, tmp_path):
    built, _ = finished
    session = built.session
    settings = session.call("thresholds")
    assert set(settings) >= {"port_scan", "beaconing", "volume_spike"}
    fields = {f["key"]: f for f in settings["port_scan"]["fields"]}
    assert fields["enabled"]["type"] == "bool"
    numeric = next(f for f in fields.values() if f["type"] in ("int", "float") and f["minimum"] is not None)
    off = session.call("what_if", kind="port_scan", values={"enabled": False})
    assert off["current"] > 0 and off["proposed"] == 0 and not off["estimate"]
    with pytest.raises(CommandError, match=numeric["key"]):
        session.call("what_if", kind="port_scan", values={numeric["key"]: numeric["minimum"] - 1})
    with pytest.raises(CommandError, match="true or false"):
        session.call("set_thresholds", kind="port_scan", values={"enabled": "no"})
    result = session.call("set_thresholds", kind="port_scan", values={numeric["key"]: numeric["maximum"]})
    assert (
        session.engine.detectors["port_scan"].settings.__getattribute__(numeric["key"]) == numeric["maximum"]
    )
    saved = tomllib.loads(Path(result["saved_to"]).read_text())
    assert saved["detectors"]["port_scan"][numeric["key"]] == numeric["maximum"]


def test_replay_controls_are_refused_live_and_checked(finished):
    built, _ = finished
    session = built.session
    assert session.call("replay", action="speed", value=2.0)["speed"] == 2.0
    assert session.call("replay", action="faster")["speed"] == 5.0
    assert session.call("replay", action="slower")["speed"] == 2.0
    assert session.call("replay", action="pause")["paused"] is True
    with pytest.raises(CommandError):
        session.call("replay", action="rewind")
    with pytest.raises(CommandError):
        session.call("replay", action="speed", value=-1)
    with pytest.raises(CommandError, match="not configured"):
        session.call("sync", action="pause")


def test_unknown_commands_and_bad_arguments_are_refused(finished):
    built, _ = finished
    with pytest.raises(CommandError, match="unknown command"):
        built.session.call("format_disk")
    with pytest.raises(CommandError, match="unknown command"):
        built.session.call("_welcome")
    with pytest.raises(CommandError, match="acknowledge"):
        built.session.call("acknowledge", id="x")


def test_commands_after_stop_say_so(finished):
    built, _ = finished
    built.session.stop()
    with pytest.raises(CommandError, match="stopped"):
        built.session.call("thresholds")


def test_bad_setup_is_a_clear_error(tmp_path):
    with pytest.raises(SetupError, match="no such capture file"):
        build_session(SensorSpec(replay=(str(tmp_path / "missing.pcap"),), config_path=_empty(tmp_path)))
    broken = tmp_path / "broken.toml"
    broken.write_text("[detectors.port_scan]\nenabled = 'yes'\n")
    with pytest.raises(SetupError, match=r"detectors\.port_scan\.enabled"):
        build_session(SensorSpec(replay=(INCIDENTS,), config_path=broken))
    with pytest.raises(SetupError, match="interface"):
        build_session(SensorSpec(interface="no-such-if0", config_path=_empty(tmp_path)))


def test_a_damaged_capture_is_a_notice_not_a_crash(tmp_path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(Path(INCIDENTS).read_bytes()[:50_000])
    built = build_session(SensorSpec(replay=(str(cut),), speed=None, config_path=_empty(tmp_path)))
    recorder = Recorder()
    built.session.subscribe(recorder)
    built.session.start()
    try:
        assert built.session.finished.wait(30)
        recorder.wait_for(
            lambda: any(e.level == "warning" and "truncated" in e.text for e in recorder.of(NoticeEvent))
        )
        recorder.wait_for(lambda: any(e.status.state == "finished" for e in recorder.of(StatusEvent)))
    finally:
        built.cleanup()


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.toml"
    path.write_text("")
    return path


def test_the_store_holds_every_baseline_as_the_sensor_left_it(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("")
    spec = SensorSpec(replay=(INCIDENTS,), speed=None, config_path=config, data_dir=tmp_path / "data")
    built = build_session(spec)
    try:
        built.session.start()
        assert built.session.finished.wait(60)
        baselines = built.session.engine.book.baselines
        first = built.session.call("save_baselines")
        assert first["baselines"] == len(baselines) > 0
        assert built.session.call("save_baselines")["saved"] == 0  # nothing moved since
        expected = {key: json.loads(json.dumps(base.to_dict())) for key, base in baselines.items()}
        assert built.session.store.all_baselines() == expected
    finally:
        built.cleanup()
    second = build_session(spec)
    try:
        assert second.session.store.all_baselines() == expected
        # Not started: the engine is called directly. What it loaded is what the store holds.
        assert second.session.engine.save_baselines(final=True) == 0
    finally:
        second.cleanup()
