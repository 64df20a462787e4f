"""Round trips through every table of the store, on a real SQLite file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from heimdal_tui.detect.alerts import Alert, AlertState
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.model import Severity
from heimdal_tui.store import Store, StoreError, alert_record

MAC = 0x001122334455
IPV4_KEY = (1 << 60) | 0xC0A80102


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data") as opened:
        yield opened


def record(alert_id: str = "a1", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": alert_id,
        "kind": "port_scan",
        "severity": "high",
        "score": 7.5,
        "ts": 1000.0,
        "device_key": MAC,
        "device": {"mac": "00:11:22:33:44:55", "ip": "192.168.1.2", "name": "nas", "type": "nas"},
        "peer": "203.0.113.9",
        "first_seen": 1000.0,
        "last_seen": 1010.0,
        "count": 3,
        "summary": "203.0.113.9 probed 40 ports",
        "evidence": {"ports": [22, 23, 80], "window": 60, "nested": {"ok": True}},
        "state": "open",
        "updated": 1010.0,
    }
    base.update(changes)
    return base


def without_wall(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None
    assert isinstance(row.pop("created_wall"), float)
    return row


# -- alerts ----------------------------------------------------------------------------------------
def test_alert_round_trip(store: Store):
    store.upsert_alert(record())
    assert without_wall(store.alert("a1")) == record()
    assert store.alert("missing") is None


def test_upsert_refreshes_and_keeps_operator_state(store: Store):
    store.upsert_alert(record())
    created = store.alert("a1")
    store.set_alert_state("a1", "acknowledged", actor="ops", reason="checking", ts=1020.0)
    update = record(count=9, last_seen=1100.0, severity="critical", score=9.5)
    del update["state"], update["updated"]
    time.sleep(0.01)
    store.upsert_alert(update)
    row = store.alert("a1")
    assert row is not None and created is not None
    assert (row["count"], row["last_seen"], row["severity"], row["state"]) == (
        9,
        1100.0,
        "critical",
        "acknowledged",
    )
    assert row["updated"] == 1100.0  # defaults to last_seen
    assert row["created_wall"] == created["created_wall"]
    store.upsert_alert(record(state="resolved"))
    assert store.alert("a1")["state"] == "resolved"  # type: ignore[index]


def test_alert_record_from_an_alert(store: Store):
    alert = Alert(
        id="abc",
        kind="beaconing",
        severity=Severity.MEDIUM,
        score=5.0,
        ts=50.0,
        device=DeviceRef(key=IPV4_KEY, mac=None, ip="192.168.1.2", name=None, type="laptop"),
        peer="evil.example",
        first_seen=50.0,
        last_seen=80.0,
        count=4,
        summary="beacons every 60 s",
        evidence={"period": 60.0},
        state=AlertState.ACKNOWLEDGED,
    )
    store.upsert_alert(alert_record(alert))
    row = without_wall(store.alert("abc"))
    assert row["device_key"] == IPV4_KEY
    assert row["device"] == {"mac": None, "ip": "192.168.1.2", "name": None, "type": "laptop"}
    assert (row["severity"], row["state"], row["updated"]) == ("medium", "acknowledged", 80.0)


def test_alert_filters(store: Store):
    store.upsert_alerts(
        [
            record("a", severity="low", last_seen=1.0),
            record("b", severity="medium", kind="dns_tunnel", last_seen=2.0),
            record("c", severity="high", device_key=7, last_seen=3.0),
            record("d", severity="critical", state="resolved", last_seen=4.0),
            # numpy integers (device keys come out of numpy arrays) are accepted.
            record("e", severity="high", device_key=np.uint64(IPV4_KEY), last_seen=5.0),
        ]
    )

    def ids(**filters: Any) -> list[str]:
        return [row["id"] for row in store.alerts(**filters)]

    assert ids() == ["e", "d", "c", "b", "a"]
    assert ids(state="open") == ["e", "c", "b", "a"]
    assert ids(state=["resolved", "acknowledged"]) == ["d"]
    assert ids(kind="dns_tunnel") == ["b"]
    assert ids(device_key=7) == ["c"]
    assert ids(device_key=IPV4_KEY) == ["e"]
    assert ids(severity_at_least="high") == ["e", "d", "c"]
    assert ids(severity_at_least=Severity.MEDIUM, state="open", limit=2) == ["e", "c"]
    assert store.count_alerts() == 5 and store.count_alerts(state="open") == 4


def test_bad_alert_records_are_refused(store: Store):
    with pytest.raises(ValueError, match="severity"):
        store.upsert_alert(record(severity="urgent"))
    with pytest.raises(ValueError, match="alert state"):
        store.upsert_alert(record(state="closed"))
    bad = record()
    del bad["kind"]
    with pytest.raises(ValueError, match="lacks kind"):
        store.upsert_alert(bad)
    with pytest.raises(ValueError):
        store.alerts(severity_at_least="huge")
    assert store.alerts() == []


def test_set_alert_state_writes_the_audit_trail(store: Store):
    store.upsert_alert(record())
    store.set_alert_state("a1", "false_positive", actor="alice", reason="backup job", ts=2000.0)
    row = store.alert("a1")
    assert row is not None and (row["state"], row["updated"]) == ("false_positive", 2000.0)
    (entry,) = store.audit(alert_id="a1")
    assert entry["actor"] == "alice" and entry["action"] == "set_state"
    assert entry["device_key"] == MAC and entry["ts"] == 2000.0
    assert entry["detail"] == {"from": "open", "to": "false_positive", "reason": "backup job"}
    assert abs(entry["wall_time"] - time.time()) < 60
    with pytest.raises(KeyError):
        store.set_alert_state("nope", "resolved", actor="alice", reason="", ts=1.0)
    with pytest.raises(ValueError):
        store.set_alert_state("a1", "gone", actor="alice", reason="", ts=1.0)
    assert len(store.audit()) == 1


def test_prune_alerts_drops_closed_then_oldest(store: Store):
    store.upsert_alerts(
        [
            record("old-open", last_seen=1.0),
            record("old-closed", last_seen=2.0, state="resolved"),
            record("new-closed", last_seen=9.0, state="false_positive"),
            record("new-open", last_seen=10.0),
        ]
    )
    assert store.prune_alerts(3) == 1
    assert {r["id"] for r in store.alerts()} == {"old-open", "new-closed", "new-open"}
    assert store.prune_alerts(1) == 2
    assert [r["id"] for r in store.alerts()] == ["new-open"]
    assert store.prune_alerts(5) == 0


# -- audit -----------------------------------------------------------------------------------------
def test_audit_round_trip_and_filters(store: Store):
    first = store.add_audit("bob", "suppress", ts=10.0, device_key=MAC, detail={"hours": 4}, wall_time=5.0)
    second = store.add_audit("bob", "threshold", ts=11.0, detail={"key": "port_scan.window", "to": 30})
    third = store.add_audit("eve", "note", ts=12.0, alert_id="a9", device_key=MAC)
    assert first < second < third
    assert [e["id"] for e in store.audit()] == [third, second, first]
    assert [e["id"] for e in store.audit(device_key=MAC)] == [third, first]
    assert [e["id"] for e in store.audit(alert_id="a9")] == [third]
    assert [e["id"] for e in store.audit(limit=1)] == [third]
    oldest = store.audit()[-1]
    assert oldest == {
        "id": first,
        "ts": 10.0,
        "wall_time": 5.0,
        "actor": "bob",
        "action": "suppress",
        "alert_id": None,
        "device_key": MAC,
        "detail": {"hours": 4},
    }


# -- suppressions ----------------------------------------------------------------------------------
def test_suppressions(store: Store):
    by_device = store.add_suppression(100.0, device_key=MAC, reason="maintenance", created=10.0)
    by_kind_peer = store.add_suppression(200.0, kind="beaconing", peer="ntp.example")
    everything = store.add_suppression(50.0)
    rows = store.suppressions()
    assert [r["id"] for r in rows] == [by_device, by_kind_peer, everything]
    assert rows[0] == {
        "id": by_device,
        "device_key": MAC,
        "kind": None,
        "peer": None,
        "until": 100.0,
        "reason": "maintenance",
        "created": 10.0,
        "created_wall": rows[0]["created_wall"],
    }
    assert store.is_suppressed(7, "port_scan", None, now=49.0)  # the catch-all rule
    assert not store.is_suppressed(7, "port_scan", None, now=50.0)  # ended exactly at 50
    assert store.is_suppressed(MAC, "port_scan", "1.2.3.4", now=99.0)
    assert not store.is_suppressed(MAC, "port_scan", "1.2.3.4", now=100.0)
    assert store.is_suppressed(7, "beaconing", "ntp.example", now=150.0)
    assert not store.is_suppressed(7, "beaconing", "other.example", now=150.0)
    assert not store.is_suppressed(7, "beaconing", None, now=150.0)
    assert [r["id"] for r in store.active_suppressions(60.0)] == [by_device, by_kind_peer]
    assert store.expire_suppressions(100.0) == 2
    assert [r["id"] for r in store.suppressions()] == [by_kind_peer]
    assert store.remove_suppression(by_kind_peer) is True
    assert store.remove_suppression(by_kind_peer) is False
    assert store.suppressions() == []


# -- allowlist -------------------------------------------------------------------------------------
def test_allowlist(store: Store):
    one = store.add_allowlist("new_port", "tcp/8080", device_key=MAC, reason="dev server", created=1.0)
    every = store.add_allowlist("new_destination", "updates.example")
    assert store.add_allowlist("new_port", "tcp/8080", device_key=MAC, reason="still dev") == one
    assert store.add_allowlist("new_port", "tcp/8080", reason="everyone") not in (one, every)
    assert store.add_allowlist("new_destination", "updates.example", reason="again") == every
    entries = store.allowlist()
    assert len(entries) == 3
    assert entries[0] == {
        "id": one,
        "device_key": MAC,
        "kind": "new_port",
        "value": "tcp/8080",
        "reason": "still dev",
        "created": 1.0,
        "created_wall": entries[0]["created_wall"],
    }
    assert store.is_allowlisted(MAC, "new_port", "tcp/8080")
    assert store.is_allowlisted(12345, "new_destination", "updates.example")
    assert not store.is_allowlisted(MAC, "new_port", "tcp/8081")
    assert [e["value"] for e in store.allowlist(kind="new_destination")] == ["updates.example"]
    assert len(store.allowlist(device_key=99)) == 2  # the every-device entries
    assert store.remove_allowlist(one) and not store.remove_allowlist(one)
    assert len(store.allowlist(device_key=MAC)) == 2


# -- baselines, drift, kv --------------------------------------------------------------------------
def test_baselines(store: Store):
    data = {"bytes_per_minute": [1.5, 2.5], "peers": {"1.1.1.1": 3}, "type": "phone"}
    store.save_baseline(MAC, data, "printer-v2", updated=500.0)
    store.save_baseline(IPV4_KEY, {"n": 1}, 3)
    assert store.load_baseline(MAC) == data
    assert store.load_baseline(42) is None
    assert store.baseline_info(MAC) == {
        "device_key": MAC,
        "profile_version": "printer-v2",
        "updated": 500.0,
        "data": data,
    }
    info = store.baseline_info(IPV4_KEY)
    assert info is not None and info["profile_version"] == 3
    store.save_baseline(MAC, {"replaced": True}, None, updated=600.0)
    assert store.all_baselines() == {MAC: {"replaced": True}, IPV4_KEY: {"n": 1}}
    assert store.save_baselines([(1, {"a": 1}, None), (2, {"b": 2}, "p")], updated=700.0) == 2
    assert len(store.all_baselines()) == 4
    assert store.delete_baseline(MAC) is True and store.delete_baseline(MAC) is False
    assert MAC not in store.all_baselines()


def test_drift_history_and_pruning(store: Store):
    for i in range(10):
        store.add_drift(MAC, ts=100.0 + i, score=i / 10, features={"i": i}, keep=5)
    store.add_drift(7, ts=1.0, score=0.5)
    history = store.drift_history(MAC, limit=100)
    assert [p["ts"] for p in history] == [105.0, 106.0, 107.0, 108.0, 109.0]
    assert history[-1] == {"device_key": MAC, "ts": 109.0, "score": 0.9, "features": {"i": 9}}
    assert [p["ts"] for p in store.drift_history(MAC, limit=2)] == [108.0, 109.0]
    for i in range(4):
        store.add_drift(7, ts=2.0 + i, score=0.1, keep=None)
    assert len(store.drift_history(7)) == 5
    assert store.prune_drift(keep=2) == 3 + 3
    assert [p["ts"] for p in store.drift_history(7)] == [4.0, 5.0]
    assert [p["ts"] for p in store.drift_history(MAC)] == [108.0, 109.0]


def test_drift_points_in_bulk_and_every_devices_history(store: Store):
    points: list[tuple[int, float, float, dict[str, float] | None]]
    points = [(MAC, 100.0 + i, i / 10, {"volume": i / 10}) for i in range(6)]
    points += [(7, 50.0, 0.2, None), (7, 40.0, 0.3, {"services": 1.0})]  # a late point, written last
    assert store.add_drifts(points, keep=4) == 8
    assert store.add_drifts([]) == 0
    histories = store.drift_histories(limit=3)
    assert [p["ts"] for p in histories[MAC]] == [103.0, 104.0, 105.0]  # pruned to 4, the last 3 asked
    assert histories[MAC][-1]["features"] == {"volume": 0.5}
    # In the order written, as the engine scored them (not re-sorted by time).
    assert [(p["ts"], p["features"]) for p in histories[7]] == [(50.0, {}), (40.0, {"services": 1.0})]
    assert len(store.drift_history(MAC, limit=100)) == 4


def test_kv(store: Store):
    assert store.kv_get("learning_start") is None
    assert store.kv_get("learning_start", 0.0) == 0.0
    store.kv_set("learning_start", 1_700_000_000.25)
    store.kv_set("interface", {"name": "eth0", "filters": ["not arp"]})
    store.kv_set("learning_start", 1_700_000_001.5)
    assert store.kv_get("learning_start") == 1_700_000_001.5
    assert store.kv_items() == {
        "interface": {"name": "eth0", "filters": ["not arp"]},
        "learning_start": 1_700_000_001.5,
    }
    assert store.kv_delete("interface") and not store.kv_delete("interface")


def test_data_survives_reopening(tmp_path: Path):
    with Store.open(tmp_path) as store:
        store.upsert_alert(record())
        store.save_baseline(MAC, {"x": 1})
        store.kv_set("k", [1, 2])
    with Store.open(tmp_path) as store:
        assert store.recovered is None
        assert without_wall(store.alert("a1")) == record()
        assert store.load_baseline(MAC) == {"x": 1}
        assert store.kv_get("k") == [1, 2]


def test_a_closed_store_says_so(tmp_path: Path):
    store = Store.open(tmp_path)
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.alerts()
    with pytest.raises(StoreError, match="closed"):
        store.kv_set("a", 1)
