"""Backup and restore of a real store holding alerts, audit, baselines and drift: a round trip, a
backup taken while another process and another thread write, restores refused while a daemon runs
and for files that are not heimdal stores, an older store upgraded, ownership kept for the service
user, and the CLI."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from heimdal_tui.cli.main import main
from heimdal_tui.service.backup import BackupError, RestoreRefused, backup_store, restore_store
from heimdal_tui.service.lock import DaemonLock
from heimdal_tui.store import SCHEMA_VERSION, Store


def alert(alert_id: str, i: int = 1, state: str = "open") -> dict[str, Any]:
    return {
        "id": alert_id,
        "kind": "dns_tunnel",
        "severity": "high",
        "score": 8.0,
        "ts": float(i),
        "device_key": i % 5,
        "first_seen": float(i),
        "last_seen": float(i),
        "evidence": {"qname": f"x{i}.example"},
        "state": state,
    }


def fill_store(data_dir: Path) -> dict[str, Any]:
    with Store.open(data_dir) as store:
        store.upsert_alerts(alert(f"a{i}", i, "resolved" if i % 3 == 0 else "open") for i in range(50))
        store.set_alert_state("a1", "acknowledged", actor="op", reason="mine", ts=100.0)
        store.save_baselines((k, {"services": [f"tcp/{k}"]}, 1) for k in range(5))
        for i in range(20):
            store.add_drift(i % 5, ts=float(i), score=i / 20)
        store.add_allowlist("beaconing", "198.51.100.9", device_key=3, reason="ntp")
        return content(store)


def content(store: Store) -> dict[str, Any]:
    return {
        "alerts": store.alerts(),
        "audit": store.audit(limit=None),
        "baselines": store.all_baselines(),
        "drift": [store.drift_history(k) for k in range(5)],
        "allowlist": store.allowlist(),
    }


def test_round_trip(tmp_path: Path):
    data = tmp_path / "data"
    original = fill_store(data)
    target, summary = backup_store(data, tmp_path / "backup.db")
    assert summary.alerts == 50 and summary.baselines == 5 and summary.schema_version == SCHEMA_VERSION
    assert target.stat().st_mode & 0o777 == 0o600
    assert not Path(f"{target}-wal").exists()  # one self-contained file

    with Store.open(data) as store:  # life goes on, then something goes wrong
        store.prune_alerts(keep=3)
        store.kv_set("after-backup", True)
        changed = content(store)

    result = restore_store(target, data)
    assert result.summary.alerts == 50 and result.upgraded_from is None
    assert result.replaced is not None and result.replaced.name.endswith(".bak")
    with Store.open(data) as store:
        assert content(store) == original
        assert store.kv_get("after-backup") is None
    # The replaced store is kept whole beside it (its WAL folded in).
    bak = sqlite3.connect(result.replaced)
    assert bak.execute("SELECT count(*) FROM alerts").fetchone()[0] == len(changed["alerts"]) == 3
    assert bak.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    bak.close()


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from heimdal_tui.store import Store
    store = Store.open(Path(sys.argv[1]))
    print("ready", flush=True)
    i = 0
    while True:
        rec = lambda side: {"id": f"{i}-{side}", "kind": "port_scan", "severity": "low", "score": 1.0,
                            "ts": float(i), "device_key": 1, "first_seen": float(i),
                            "last_seen": float(i), "evidence": {"pad": "p" * 2000}}
        store.upsert_alerts([rec("a"), rec("b")])  # one transaction: both or neither
        i += 1
    """
)


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM alerts").fetchone()[0])
    finally:
        conn.close()


def assert_pairs_complete(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = [r[0] for r in conn.execute("SELECT id FROM alerts")]
    finally:
        conn.close()
    numbers = {i.split("-")[0] for i in ids}
    assert {f"{n}-{s}" for n in numbers for s in "ab"} == set(ids)
    return len(numbers)


def test_a_backup_while_another_process_writes_is_consistent(tmp_path: Path):
    data = tmp_path / "data"
    Store.open(data).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(data)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        while count_rows(data / "heimdal.db") < 20:  # the writer is under way
            pass
        seen = []
        for n in range(4):
            target, _ = backup_store(data, tmp_path / f"b{n}.db")
            seen.append(assert_pairs_complete(target))
        assert seen[-1] > 0 and seen == sorted(seen)
    finally:
        writer.kill()
        writer.wait()


def test_a_backup_while_another_thread_writes_is_consistent(tmp_path: Path):
    data = tmp_path / "data"
    stop = threading.Event()
    with Store.open(data) as store:

        def write() -> None:
            i = 0
            while not stop.is_set():
                store.upsert_alerts([alert(f"{i}-a", i), alert(f"{i}-b", i)])
                i += 1

        thread = threading.Thread(target=write)
        thread.start()
        try:
            for n in range(3):
                target, _ = backup_store(data, tmp_path / f"t{n}.db")
                assert_pairs_complete(target)
        finally:
            stop.set()
            thread.join()


def test_restore_is_refused_while_a_daemon_runs(tmp_path: Path):
    data = tmp_path / "data"
    fill_store(data)
    target, _ = backup_store(data, tmp_path / "b.db")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from heimdal_tui.service.lock import DaemonLock;"
            "DaemonLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = (data / "heimdal.db").read_bytes()
        with pytest.raises(
            RestoreRefused, match=rf"daemon is running for {data} \(pid {holder.pid}.*stop it first"
        ):
            restore_store(target, data)
        assert (data / "heimdal.db").read_bytes() == before
        assert not list(data.glob("*.bak"))
    finally:
        holder.kill()
        holder.wait()
    restore_store(target, data)  # once it is gone


def test_a_restore_holds_the_lock_so_no_daemon_starts_meanwhile(tmp_path: Path):
    data = tmp_path / "data"
    fill_store(data)
    target, _ = backup_store(data, tmp_path / "b.db")
    with DaemonLock(data), pytest.raises(RestoreRefused):
        restore_store(target, data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(random.Random(1).randbytes(8192)), "is not a SQLite database"),
        (lambda p: p.write_text("id,kind\n1,port_scan\n"), "is not a SQLite database"),
        (
            lambda p: sqlite3.connect(p).executescript(
                "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x');"
            ),
            "but not a heimdal store",
        ),
    ],
)
def test_restore_refuses_what_is_not_a_heimdal_store(tmp_path: Path, make: Any, message: str):
    data = tmp_path / "data"
    fill_store(data)
    bogus = tmp_path / "bogus.db"
    make(bogus)
    with pytest.raises(BackupError, match=message):
        restore_store(bogus, data)
    with Store.open(data) as store:
        assert store.count_alerts() == 50


def test_restore_refuses_a_newer_schema_and_a_corrupt_store(tmp_path: Path):
    data = tmp_path / "data"
    fill_store(data)
    newer = tmp_path / "newer.db"
    fill_store(tmp_path / "n")
    backup_store(tmp_path / "n", newer)
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(BackupError, match="schema version 99, newer than this heimdal-tui"):
        restore_store(newer, data)

    corrupt = tmp_path / "corrupt.db"
    backup_store(data, corrupt)
    raw = bytearray(corrupt.read_bytes())
    page = 4096
    for offset in range(2 * page, len(raw) - page, page):  # smash every page header but the first two
        raw[offset : offset + 8] = b"\xff" * 8
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(BackupError, match=r"integrity check|not a readable SQLite database"):
        restore_store(corrupt, data)


def test_an_older_store_is_restored_and_upgraded(tmp_path: Path):
    old = tmp_path / "old"
    fill_store(old)
    conn = sqlite3.connect(old / "heimdal.db")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        if table not in (
            "schema_version",
            "alerts",
            "audit",
            "suppressions",
            "allowlist",
            "kv",
            "sqlite_sequence",
        ):
            conn.execute(f"DROP TABLE {table}")
    conn.execute("DELETE FROM schema_version WHERE version > 1")
    conn.commit()
    conn.close()
    result = restore_store(old / "heimdal.db", tmp_path / "fresh")
    assert result.upgraded_from == 1 and result.replaced is None
    assert result.summary.schema_version == SCHEMA_VERSION and result.summary.alerts == 50


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_restore_as_root_keeps_the_service_user_as_owner(tmp_path: Path):
    data = tmp_path / "data"
    fill_store(data)
    target, _ = backup_store(data, tmp_path / "b.db")
    os.chown(data, 65534, 65534)
    os.chown(data / "heimdal.db", 65534, 65534)
    restore_store(target, data)
    assert (data / "heimdal.db").stat().st_uid == 65534


def test_backup_destinations(tmp_path: Path):
    data = tmp_path / "data"
    with pytest.raises(BackupError, match="there is no store to back up"):
        backup_store(data, tmp_path / "x.db")
    fill_store(data)
    target, _ = backup_store(data, tmp_path)  # a directory: a time-stamped file inside
    assert target.parent == tmp_path and target.name.startswith("heimdal-")
    with pytest.raises(BackupError, match="exists; choose another name or pass --force"):
        backup_store(data, target)
    backup_store(data, target, overwrite=True)
    with pytest.raises(BackupError, match="is not a directory"):
        backup_store(data, tmp_path / "missing" / "x.db")
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = tmp_path / "data"
    fill_store(data)
    assert main(["backup", str(tmp_path / "b.db"), "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"backed up {data} to {tmp_path / 'b.db'}: schema version {SCHEMA_VERSION}, 50 alerts" in out
    assert main(["backup", str(tmp_path / "b.db"), "--data-dir", str(data)]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "b.db"), "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "restored" in out and "the previous store is kept as" in out
    (tmp_path / "junk").write_text("junk")
    assert main(["restore", str(tmp_path / "junk"), "--data-dir", str(data)]) == 1
    assert "is not a SQLite database" in capsys.readouterr().err
