"""Concurrent writers (threads sharing a store, and a second connection) and a writer killed with
SIGKILL part-way: every committed row survives and the database stays consistent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from heimdal_tui.store import Store

REPO = Path(__file__).resolve().parents[2]


def record(alert_id: str, device_key: int, i: int) -> dict[str, Any]:
    return {
        "id": alert_id,
        "kind": "port_scan",
        "severity": "medium",
        "score": 5.0,
        "ts": float(i),
        "device_key": device_key,
        "device": {"name": f"dev{device_key}"},
        "peer": "198.51.100.1",
        "first_seen": float(i),
        "last_seen": float(i),
        "count": 1,
        "summary": "probe",
        "evidence": {"i": i},
    }


def test_threads_sharing_one_store_and_a_second_connection(tmp_path: Path):
    per_writer = 150
    errors: list[BaseException] = []
    with Store.open(tmp_path) as shared, Store.open(tmp_path) as second:

        def writer(store: Store, name: str, device_key: int) -> None:
            try:
                for i in range(per_writer):
                    alert_id = f"{name}-{i}"
                    store.upsert_alert(record(alert_id, device_key, i))
                    store.set_alert_state(alert_id, "acknowledged", actor=name, reason="seen", ts=float(i))
                    store.add_drift(device_key, ts=float(i), score=0.5, keep=100)
                    store.kv_set(name, i)
                    if i % 10 == 0:
                        store.alerts(device_key=device_key, limit=5)
            except BaseException as exc:  # collected: the assertion below reports it
                errors.append(exc)

        threads = [
            threading.Thread(target=writer, args=(shared, "t1", 1)),
            threading.Thread(target=writer, args=(shared, "t2", 2)),
            threading.Thread(target=writer, args=(second, "t3", 3)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        for store in (shared, second):
            assert store.count_alerts() == 3 * per_writer
            assert store.count_alerts(state="acknowledged") == 3 * per_writer
            assert len(store.audit(limit=None)) == 3 * per_writer
            assert store.kv_items() == {"t1": per_writer - 1, "t2": per_writer - 1, "t3": per_writer - 1}
            assert [len(store.drift_history(k, limit=1000)) for k in (1, 2, 3)] == [100, 100, 100]


WRITER = """
import sys
from pathlib import Path
from heimdal_tui.store import Store

store = Store.open(Path(sys.argv[1]))
i = 0
while True:
    alert_id = f"crash-{i}"
    store.upsert_alert({
        "id": alert_id, "kind": "beaconing", "severity": "high", "score": 7.0, "ts": float(i),
        "device_key": 5, "first_seen": float(i), "last_seen": float(i),
        "evidence": {"padding": "x" * 2000, "i": i},
    })
    store.set_alert_state(alert_id, "resolved", actor="writer", reason="test", ts=float(i))
    # Committed: say so only now, so every id printed must be in the database after the kill.
    print(alert_id, flush=True)
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_mid_loop_leaves_a_consistent_store(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    committed: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            committed.append(line.strip())
            if len(committed) >= 400:
                break
        proc.send_signal(signal.SIGKILL)  # while it is still writing
        proc.wait(timeout=30)
        # Ids it printed after the 400th but before the kill are still in the pipe: committed too.
        committed += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert len(committed) >= 400
    # The killed process left its write-ahead log behind, never checkpointed.
    assert (tmp_path / "heimdal.db-wal").exists()

    raw = sqlite3.connect(tmp_path / "heimdal.db")
    assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    raw.close()
    with Store.open(tmp_path) as store:
        assert store.recovered is None
        stored = {row["id"]: row for row in store.alerts(limit=None)}
        assert set(committed) <= set(stored)
        assert len(stored) - len(committed) <= 1  # at most the one in flight at the kill
        # Consistency: each state change and its audit row were one transaction.
        audited = {entry["alert_id"] for entry in store.audit(limit=None)}
        resolved = {alert_id for alert_id, row in stored.items() if row["state"] == "resolved"}
        assert resolved == audited
        assert set(committed) <= resolved
