"""A full or read-only disk under the store, for real: a tmpfs filled up, remounted read-only, and an
ext4 image the kernel turns read-only mid-run. Writes must not raise into the caller, reads must go
on, nothing stored before must be damaged, and the writes made meanwhile must reach the disk once
it takes writes again."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.store import Store, StoreError
from heimdal_tui.store.backlog import PendingWrite, Statement, WriteBacklog
from tests.mounts import ext4_image, fill, mount_options, remount, tmpfs, trigger_ext4_error

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def record(alert_id: str, i: int, state: str | None = "open") -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": alert_id,
        "kind": "port_scan",
        "severity": "high",
        "score": 7.5,
        "ts": float(i),
        "device_key": 42,
        "device": {"name": "plug"},
        "peer": "198.51.100.7",
        "first_seen": 1.0,
        "last_seen": float(i),
        "count": i,
        "summary": f"probe {i}",
        "evidence": {"ports": list(range(i % 50))},
    }
    if state is not None:
        rec["state"] = state
    return rec


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_a_full_disk_keeps_writes_in_memory_and_saves_them_when_space_returns(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "2m") as disk:
        store = Store.open(disk / "data")
        store.upsert_alert(record("before", 1))
        store.add_audit("operator", "note", ts=1.0, detail={"text": "stored before the disk filled"})
        filler = fill(disk)

        # None of these raise, though the disk is full.
        for i in range(2, 40):
            store.upsert_alert(record("during", i, state="open" if i == 2 else None))
        store.set_alert_state("during", "acknowledged", actor="operator", reason="seen", ts=40.0)
        store.add_drift(42, ts=40.0, score=0.9)
        store.kv_set("learning_started", 123.0)
        status = store.status()
        assert status.degraded and "full" in (status.reason or "")
        assert status.pending > 0 and status.in_memory and status.lost == 0
        assert "not writing to disk" in status.describe()

        # Reads see the pending writes as if they were stored.
        during = store.alert("during")
        assert during is not None and during["state"] == "acknowledged" and during["count"] == 39
        assert store.kv_get("learning_started") == 123.0

        # Another reader sees only what is on disk: the store from before, intact.
        other = sqlite3.connect(store.path)
        assert [r[0] for r in other.execute("SELECT id FROM alerts")] == ["before"]
        other.close()

        assert store.retry_pending() is False  # still full
        filler.unlink()
        assert store.retry_pending() is True
        assert not store.degraded and store.status().pending == 0
        store.close()

        assert integrity(disk / "data" / "heimdal.db") == "ok"
        with Store.open(disk / "data") as again:
            stored = again.alert("during")
            assert stored is not None
            assert stored["state"] == "acknowledged" and stored["count"] == 39
            assert again.alert("before") is not None
            actions = [row["action"] for row in again.audit()]
            assert actions == ["set_state", "note"]
            assert len(again.drift_history(42)) == 1
            assert again.kv_get("learning_started") == 123.0


def test_repeated_upserts_while_degraded_do_not_pile_up(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "2m") as disk:
        store = Store.open(disk / "data")
        filler = fill(disk)
        store.upsert_alert(record("a", 1))
        for i in range(2, 500):
            store.upsert_alert(record("a", i, state=None))
            store.upsert_alert(record("b", i, state=None))
        # The first insert of "a" stays (it set the state); the repeats replace each other.
        assert store.status().pending <= 3
        filler.unlink()
        assert store.retry_pending()
        stored_a, stored_b = store.alert("a"), store.alert("b")
        assert stored_a is not None and stored_a["count"] == 499 and stored_a["state"] == "open"
        assert stored_b is not None and stored_b["count"] == 499
        store.close()


def _history(store: Store) -> dict[str, Any]:
    """Everything the store holds but the wall-clock columns, comparable across two runs."""
    alerts = [{k: v for k, v in a.items() if k != "created_wall"} for a in store.alerts()]
    audit = [{k: v for k, v in a.items() if k not in ("id", "wall_time")} for a in store.audit(limit=None)]
    return {
        "alerts": sorted(alerts, key=lambda a: a["id"]),
        "audit": audit,
        "kv": store.kv_items(),
        "drift": store.drift_history(7, limit=1000),
        "suppressions": [{k: v for k, v in s.items() if k != "created_wall"} for s in store.suppressions()],
    }


def _workload(store: Store) -> None:
    """Interleaved upserts, state changes, audit rows, drift, suppressions and settings."""
    for i in range(1, 120):
        alert_id = f"alert-{i % 7}"
        store.upsert_alert(record(alert_id, i, state="open" if i < 8 else None))
        if i % 11 == 0:
            store.set_alert_state(alert_id, "acknowledged", actor="op", reason=f"r{i}", ts=float(i))
        if i % 13 == 0:
            store.upsert_alert(record(alert_id, i, state="resolved"))
        if i % 5 == 0:
            store.add_drift(7, ts=float(i), score=i / 100)
        if i % 17 == 0:
            store.add_suppression(
                float(i + 100), device_key=42, kind="port_scan", reason=f"s{i}", created=float(i)
            )
        if i % 9 == 0:
            store.kv_set("counter", i)


def test_what_a_degraded_store_saves_equals_what_a_healthy_one_stored(tmp_path: Path):
    with Store.open(tmp_path / "healthy") as healthy:
        _workload(healthy)
        expected = _history(healthy)
    with tmpfs(tmp_path / "disk", "2m") as disk:
        store = Store.open(disk / "data")
        filler = fill(disk)
        _workload(store)
        assert store.degraded
        filler.unlink()
        assert store.retry_pending()
        store.close()
        with Store.open(disk / "data") as again:
            assert _history(again) == expected


def test_the_backlog_is_bounded_and_counts_what_it_drops():
    backlog = WriteBacklog(max_writes=100, max_bytes=10**9)
    for i in range(250):
        backlog.append(PendingWrite.of([Statement("INSERT INTO audit (actor) VALUES (?)", (f"a{i}",))]))
    assert len(backlog) <= 100
    assert backlog.dropped == 250 - len(backlog)
    # The newest are kept.
    assert backlog.writes[-1].statements[0].params == ("a249",)


def test_counters_are_never_folded_together():
    backlog = WriteBacklog()
    sql = "INSERT INTO sync_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value"
    for _ in range(3):
        backlog.append(PendingWrite.of([Statement(sql, ("sent", 1))]))
    assert len(backlog) == 3


def test_the_engine_goes_on_detecting_on_a_full_disk(tmp_path: Path):
    truth = json.loads((SAMPLES / "home_lan_incidents.truth.json").read_text())
    period = truth["learning_end_ts"] - truth["capture_start_ts"]
    with tmpfs(tmp_path / "disk", "3m") as disk:
        store = Store.open(disk / "data")
        engine = DetectionEngine(
            Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=period))
        )
        engine.attach_store(store)
        filler = fill(disk)
        for batch in CaptureFile(str(SAMPLES / "home_lan_incidents.pcap")).batches():
            engine.feed(batch)
        engine.finish()
        assert not engine.stats.detector_errors, engine.stats.last_error
        alerts = dict(engine.alerts.alerts)
        assert alerts and store.degraded
        scan = next(a for a in alerts.values() if a.kind == "port_scan")
        engine.acknowledge(scan.id, reason="seen while the disk was full")
        engine.save_baselines()
        filler.unlink()
        assert store.retry_pending()
        stored = {a["id"]: a for a in store.alerts()}
        assert set(stored) == set(alerts)
        assert stored[scan.id]["state"] == "acknowledged"
        assert store.all_baselines().keys() == engine.book.baselines.keys()
        store.close()
        assert integrity(disk / "data" / "heimdal.db") == "ok"


def test_a_read_only_remount_opens_read_only_and_writes_resume_after_rw(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "2m") as disk:
        with Store.open(disk / "data") as store:
            store.upsert_alert(record("before", 1))
        remount(disk, "ro")
        try:
            with pytest.raises(StoreError, match="read-only file system"):
                Store.open(disk / "data")
            store = Store.open(disk / "data", allow_read_only=True)
            status = store.status()
            assert status.degraded and "read-only" in (status.reason or "")
            assert store.alert("before") is not None
            store.upsert_alert(record("while-ro", 2))  # kept, not raised
            store.add_audit("operator", "note", ts=2.0)
            assert store.status().pending == 2 and not store.status().in_memory
            assert store.retry_pending() is False
        finally:
            remount(disk, "rw")
        assert store.retry_pending() is True
        assert store.alert("while-ro") is not None
        assert [row["action"] for row in store.audit()] == ["note"]
        store.upsert_alert(record("after", 3))
        store.close()
        with Store.open(disk / "data") as again:
            assert {a["id"] for a in again.alerts()} == {"before", "while-ro", "after"}


def test_the_kernel_refuses_a_read_only_remount_under_an_open_store(tmp_path: Path):
    """Why the test above closes the store first: with the database open for writing, `mount -o
    remount,ro` fails (busy). A running daemon meets read-only storage when the kernel forces it,
    which the ext4 test below does."""
    with tmpfs(tmp_path / "disk", "2m") as disk, Store.open(disk / "data") as store:
        store.kv_set("k", 1)
        with pytest.raises(OSError, match="busy"):
            remount(disk, "ro")


def test_storage_turning_read_only_under_a_running_store(tmp_path: Path):
    with ext4_image(tmp_path) as mnt:
        store = Store.open(mnt / "data")
        store.upsert_alert(record("before", 1))
        store.add_audit("operator", "note", ts=1.0)
        subprocess.run(["sync"], check=True)  # what the kernel has not written yet, an abort loses
        trigger_ext4_error(mnt)
        assert "ro" in mount_options(mnt).split(",") or "emergency_ro" in mount_options(mnt)

        store.upsert_alert(record("during", 2))
        store.set_alert_state("during", "resolved", actor="op", reason="gone", ts=3.0)
        status = store.status()
        assert status.degraded and status.pending >= 2
        assert store.alert("during") is not None
        before = store.alert("before")
        assert before is not None and before["count"] == 1
        store.close()  # one last try, which fails: the pending writes are reported lost, not raised

        # The file system checked and mounted again: what was stored before is intact.
        image = tmp_path / "ext4.img"
        subprocess.run(["umount", str(mnt)], check=True)
        subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, check=False)
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
        assert integrity(mnt / "data" / "heimdal.db") == "ok"
        with Store.open(mnt / "data") as again:
            assert [a["id"] for a in again.alerts()] == ["before"]
            assert [row["action"] for row in again.audit()] == ["note"]


def test_statuses_of_a_healthy_store(tmp_path: Path):
    with Store.open(tmp_path) as store:
        status = store.status()
        assert not status.degraded and status.describe() == "writing to disk"
        assert dataclasses.asdict(status)["pending"] == 0
        assert store.retry_pending() is True
