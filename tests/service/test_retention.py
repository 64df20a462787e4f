"""Retention on a real store: age limits per kind of data, the size cap pruning the oldest closed
data first and giving the space back to the file system, small transactions, and the worker
thread running beside a writer."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

from heimdal_tui.config.model import RetentionConfig
from heimdal_tui.service.retention import Retention, RetentionWorker
from heimdal_tui.store import Store
from tests.mounts import fill, tmpfs

DAY = 86_400.0
NOW = 1_800_000_000.0  # capture time and wall time of "now" in these tests


def alert(alert_id: str, state: str, last_seen: float, evidence_bytes: int = 10) -> dict[str, Any]:
    return {
        "id": alert_id,
        "kind": "beaconing",
        "severity": "medium",
        "score": 3.0,
        "ts": last_seen,
        "device_key": 7,
        "first_seen": last_seen - 60,
        "last_seen": last_seen,
        "summary": "periodic",
        "evidence": {"blob": "x" * evidence_bytes},
        "state": state,
    }


def retention(store: Store, **policy: Any) -> Retention:
    return Retention(
        store,
        dataclasses.replace(RetentionConfig(), **policy),
        capture_clock=lambda: NOW,
        wall_clock=lambda: NOW,
        pause=lambda _s: None,
    )


def test_age_limits_delete_only_old_closed_data(tmp_path: Path):
    with Store.open(tmp_path) as store:
        old, recent = NOW - 100 * DAY, NOW - 10 * DAY
        store.upsert_alerts(
            [
                alert("old-resolved", "resolved", old),
                alert("old-fp", "false_positive", old),
                alert("old-open", "open", old),
                alert("old-ack", "acknowledged", old),
                alert("recent-resolved", "resolved", recent),
            ]
        )
        store.add_drift(7, ts=NOW - 40 * DAY, score=0.5, keep=None)
        store.add_drift(7, ts=NOW - 1 * DAY, score=0.6, keep=None)
        store.add_audit("op", "old", ts=old, wall_time=NOW - 400 * DAY)
        store.add_audit("op", "recent", ts=recent, wall_time=NOW - 30 * DAY)
        store.save_baseline(7, {"learned": True}, updated=old)
        store.add_suppression(old, device_key=7, kind="beaconing")

        report = retention(store).run()

        assert {a["id"] for a in store.alerts()} == {"old-open", "old-ack", "recent-resolved"}
        assert [p["ts"] for p in store.drift_history(7)] == [NOW - 1 * DAY]
        assert [row["action"] for row in store.audit()] == ["recent"]
        assert store.load_baseline(7) == {"learned": True}
        assert len(store.suppressions()) == 1
        assert report.deleted == {"closed alerts": 2, "drift points": 1, "audit rows": 1}
        assert "retention deleted 2 closed alerts" in report.describe()


def test_delivered_asgard_items_go_after_their_age(tmp_path: Path):
    with Store.open(tmp_path) as store:
        items = [("alert", 1, f"key-{i}", json.dumps({"n": i})) for i in range(4)]
        store.sync_enqueue(items, max_items=100, now=NOW - 20 * DAY)
        rows = store.sync_items(10)
        ids = [row["id"] for row in rows]
        store.sync_mark_delivered(ids[:2], now=NOW - 10 * DAY)
        store.sync_mark_delivered(ids[2:3], now=NOW - 1 * DAY)
        report = retention(store, delivered_sync_days=7.0).run()
        assert report.deleted.get("delivered sync items") == 2
        assert store.sync_count("delivered") == 1 and store.sync_count("pending") == 1


def test_the_size_cap_prunes_oldest_closed_first_and_gives_space_back(tmp_path: Path):
    with Store.open(tmp_path) as store:
        # ~20 MiB of closed alerts, 40 open ones, baselines: well over an 8 MiB cap.
        closed = {f"closed-{n}": NOW - 100_000 + n for n in range(2000)}
        items = list(closed.items())
        for start in range(0, len(items), 200):
            store.upsert_alerts(
                alert(key, "resolved", seen, 10_000) for key, seen in items[start : start + 200]
            )
        store.upsert_alerts(alert(f"open-{i}", "open", NOW - 5 * DAY + i, 10_000) for i in range(40))
        store.save_baselines((k, {"big": "y" * 5000}, 1) for k in range(50))
        before = store.size()
        assert before.used > 8 * 1024 * 1024 and before.auto_vacuum == "incremental"
        store.checkpoint()
        file_before = store.size().file

        statements: list[str] = []
        store._connection().set_trace_callback(statements.append)
        report = retention(store, max_store_mb=8.0).run()
        store._connection().set_trace_callback(None)

        after = store.size()
        assert after.used <= 8 * 1024 * 1024 and not report.over_cap
        remaining = {a["id"] for a in store.alerts()}
        assert {f"open-{i}" for i in range(40)} <= remaining
        survivors = {a["id"] for a in store.alerts(state="resolved")}
        gone = set(closed) - survivors
        assert survivors and gone, "only what was needed goes"
        # The oldest went first: every deleted alert was last seen before every survivor.
        assert max(closed[k] for k in gone) < min(closed[k] for k in survivors)
        assert len(store.all_baselines()) == 50
        # Freed pages went back to the file system and the WAL was truncated.
        assert report.vacuumed_pages > 0 and after.file < file_before and after.wal == 0
        # Many small transactions, none deleting more than a batch.
        deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE FROM ALERTS")]
        closed_deleted = report.deleted["closed alerts"]
        assert closed_deleted > 500
        assert len(deletes) >= -(-closed_deleted // 500)


def test_a_degraded_store_is_skipped(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "1m") as disk, Store.open(disk / "data") as store:
        fill(disk)
        store.upsert_alert(alert("during", "resolved", NOW - 400 * DAY))
        assert store.degraded
        report = retention(store).run()
        assert report.skipped and "not writing to disk" in report.skipped
        assert "retention skipped" in report.describe()
        assert store.status().pending == 1  # the pending write is not pruned away either


def test_the_worker_runs_beside_a_writer_and_stops(tmp_path: Path):
    with Store.open(tmp_path) as store:
        store.upsert_alerts(alert(f"old-{i}", "resolved", NOW - 200 * DAY) for i in range(2000))
        errors: list[BaseException] = []
        done = threading.Event()

        def writer() -> None:
            try:
                for i in range(300):
                    store.upsert_alert(alert(f"new-{i}", "open", NOW))
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)
            finally:
                done.set()

        worker = RetentionWorker(
            store,
            dataclasses.replace(RetentionConfig(), interval=3600.0),
            capture_clock=lambda: NOW,
            wall_clock=lambda: NOW,
        )
        thread = threading.Thread(target=writer)
        thread.start()
        worker.start()
        assert worker.wait_for_run(1)
        thread.join()
        worker.stop()
        assert not errors and worker.last_error is None
        assert worker.last_report is not None and worker.last_report.deleted["closed alerts"] == 2000
        assert store.count_alerts() == 300
