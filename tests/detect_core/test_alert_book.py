"""Alert folding, suppression and lifecycle."""

from __future__ import annotations

from heimdal_tui.detect.alerts import AlertBook, AlertState, Suppression
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.model import Finding, Severity

REF = DeviceRef(key=1, mac="02:00:00:00:00:01", ip="192.168.1.5", name="plug", type="smart_plug")


def _finding(ts: float, peer: str | None = "10.0.0.1", severity: Severity = Severity.MEDIUM) -> Finding:
    return Finding("port_scan", 1, peer, ts, severity, 5.0, f"scan at {ts}", {"n": ts})


def test_repeats_inside_the_window_fold_into_one_alert():
    book = AlertBook(correlation_window=60.0)
    first = book.add(_finding(0.0), REF)
    assert first is not None and first.new
    again = book.add(_finding(30.0, severity=Severity.HIGH), REF)
    assert again is not None and not again.new
    alert = again.alert
    assert alert.id == first.alert.id and alert.count == 2
    assert alert.severity == Severity.HIGH and alert.last_seen == 30.0 and alert.first_seen == 0.0
    assert alert.evidence == {"n": 30.0}
    # Outside the window, or another peer: a new alert.
    assert book.add(_finding(200.0), REF).new  # type: ignore[union-attr]
    assert book.add(_finding(201.0, peer="10.0.0.2"), REF).new  # type: ignore[union-attr]
    assert len(book.alerts) == 3


def test_a_storm_from_one_cause_stays_one_alert():
    book = AlertBook(correlation_window=60.0)
    for i in range(10_000):
        book.add(_finding(i * 0.01), REF)
    assert len(book.alerts) == 1
    assert next(iter(book.alerts.values())).count == 10_000


def test_resolved_alerts_reopen_as_new_ones():
    book = AlertBook(correlation_window=600.0)
    change = book.add(_finding(0.0), REF)
    assert change is not None
    book.set_state(change.alert.id, AlertState.RESOLVED)
    later = book.add(_finding(10.0), REF)
    assert later is not None and later.new and later.alert.id != change.alert.id


def test_suppression_silences_until_it_expires():
    book = AlertBook()
    book.suppress(Suppression(until=100.0, device=1, kind="port_scan"))
    assert book.add(_finding(50.0), REF) is None and book.suppressed == 1
    assert book.add(_finding(150.0), REF) is not None
    book.expire_suppressions(150.0)
    assert book.suppressions == []


def test_cap_forgets_closed_alerts_first():
    book = AlertBook(correlation_window=0.0, max_alerts=3)
    ids = []
    for i in range(3):
        change = book.add(_finding(float(i), peer=str(i)), REF)
        assert change is not None
        ids.append(change.alert.id)
    book.set_state(ids[1], AlertState.RESOLVED)
    book.add(_finding(10.0, peer="x"), REF)
    assert ids[1] not in book.alerts and ids[0] in book.alerts and len(book.alerts) == 3


def test_fold_keys_of_forgotten_alerts_are_forgotten_too():
    book = AlertBook(correlation_window=600.0, max_alerts=100)
    for i in range(10_000):  # 10,000 peers, one alert each: only the newest 100 are held
        book.add(_finding(float(i), peer=f"10.0.{i // 256}.{i % 256}"), REF)
    assert len(book.alerts) == 100
    assert len(book._active) == 100
    # the held ones still fold their repeats
    change = book.add(_finding(10_000.0, peer="10.0.39.15"), REF)  # peer of i = 9999
    assert change is not None and not change.new and change.alert.count == 2


def test_settling_forgets_fold_keys_past_two_windows_and_keeps_the_alerts():
    book = AlertBook(correlation_window=600.0)
    old = book.add(_finding(0.0, peer="1.1.1.1"), REF)
    recent = book.add(_finding(1000.0, peer="2.2.2.2"), REF)
    assert old is not None and recent is not None
    book.settle(1000.0 + 60.0)  # old last seen 1060 s ago: within 2 windows and a minute
    assert len(book._active) == 2
    book.settle(1261.0)  # runs at most every half window: too soon
    assert len(book._active) == 2
    book.settle(1400.0)  # 1400 - 1260 = 140 s past the old one's horizon
    assert len(book._active) == 1 and old.alert.id in book.alerts
    # The recent one still folds; a repeat of the old one (a finding that late never folds:
    # 1400 s after it) opens a new alert.
    again = book.add(_finding(1400.0, peer="2.2.2.2"), REF)
    assert again is not None and not again.new and again.alert.count == 2
    late = book.add(_finding(1400.0, peer="1.1.1.1"), REF)
    assert late is not None and late.new and len(book.alerts) == 3


def test_alert_json_has_the_documented_fields():
    book = AlertBook()
    change = book.add(_finding(1_772_439_690.0), REF)
    assert change is not None
    data = change.alert.to_dict()
    assert set(data) == {
        "id",
        "kind",
        "severity",
        "score",
        "ts",
        "device",
        "peer",
        "first_seen",
        "last_seen",
        "count",
        "state",
        "summary",
        "evidence",
    }
    assert data["device"] == {"id": 1, "mac": REF.mac, "ip": REF.ip, "name": "plug", "type": "smart_plug"}
    assert data["ts"] == "2026-03-02T08:21:30.000Z" and data["state"] == "open"
