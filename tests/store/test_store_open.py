"""Opening the store: WAL mode, schema migrations, newer stores refused, corrupt stores rebuilt,
unusable directories reported."""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from heimdal_tui.store import DB_FILENAME, SCHEMA_VERSION, Store, StoreError

# The schema as version 1 shipped it, written out by hand: this is what an old store on disk holds.
V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_wall REAL NOT NULL);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    score REAL NOT NULL, ts REAL NOT NULL, device_key INTEGER NOT NULL,
    device_json TEXT NOT NULL DEFAULT '{}', peer TEXT, first_seen REAL NOT NULL,
    last_seen REAL NOT NULL, count INTEGER NOT NULL DEFAULT 1, summary TEXT NOT NULL DEFAULT '',
    evidence_json TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'open'
        CHECK (state IN ('open', 'acknowledged', 'resolved', 'false_positive')),
    updated REAL NOT NULL, created_wall REAL NOT NULL);
CREATE INDEX alerts_by_state ON alerts (state, last_seen);
CREATE INDEX alerts_by_device ON alerts (device_key, last_seen);
CREATE INDEX alerts_by_kind ON alerts (kind, last_seen);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, wall_time REAL NOT NULL,
    actor TEXT NOT NULL, action TEXT NOT NULL, alert_id TEXT, device_key INTEGER,
    detail_json TEXT NOT NULL DEFAULT '{}');
CREATE INDEX audit_by_alert ON audit (alert_id);
CREATE INDEX audit_by_device ON audit (device_key);
CREATE TABLE suppressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device_key INTEGER, kind TEXT, peer TEXT,
    until REAL NOT NULL, reason TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    created_wall REAL NOT NULL);
CREATE INDEX suppressions_by_until ON suppressions (until);
CREATE TABLE allowlist (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device_key INTEGER, kind TEXT NOT NULL,
    value TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    created_wall REAL NOT NULL);
CREATE UNIQUE INDEX allowlist_entry ON allowlist (ifnull(device_key, -1), kind, value);
CREATE TABLE kv (key TEXT PRIMARY KEY, value_json TEXT NOT NULL);
INSERT INTO schema_version VALUES (1, 0.0);
INSERT INTO alerts VALUES ('old1', 'new_device', 'medium', 5.0, 10.0, 42, '{"name":"tv"}', NULL,
    10.0, 10.0, 1, 'new device tv', '{}', 'acknowledged', 11.0, 0.0);
INSERT INTO kv VALUES ('learning_start', '123.5');
"""


def build_v1(data_dir: Path, extra_sql: str = "") -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA + extra_sql)
    conn.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def aside_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.iterdir() if ".corrupt-" in p.name)


def aside_database(data_dir: Path) -> Path:
    """The moved-aside database itself (its -wal/-shm may lie beside it)."""
    (main,) = [p for p in aside_files(data_dir) if not p.name.endswith(("-wal", "-shm", "-journal"))]
    return main


def test_fresh_store_is_wal_in_a_private_directory(tmp_path: Path):
    data_dir = tmp_path / "a" / "b"
    with Store.open(data_dir) as store:
        assert store.path == data_dir / "heimdal.db"
        assert store.data_dir == data_dir
        assert store.recovered is None
        assert store.journal_mode == "wal"
        assert store.schema_version() == SCHEMA_VERSION
        conn = store._connection()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    # WAL is a property of the file: any other connection sees it.
    other = sqlite3.connect(data_dir / "heimdal.db")
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_existing_directory_is_used_as_is(tmp_path: Path):
    tmp_path.chmod(0o750)
    with Store.open(tmp_path):
        pass
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o750


def test_migrates_a_version_1_store_keeping_its_rows(tmp_path: Path):
    path = build_v1(tmp_path)
    with Store.open(tmp_path) as store:
        assert store.recovered is None
        assert store.schema_version() == SCHEMA_VERSION >= 3
        assert store.journal_mode == "wal"
        old = store.alert("old1")
        assert old is not None
        assert (old["state"], old["device"], old["device_key"]) == ("acknowledged", {"name": "tv"}, 42)
        assert store.kv_get("learning_start") == 123.5
        # The tables version 2 added work.
        store.save_baseline(42, {"ok": 1})
        store.add_drift(42, ts=1.0, score=0.3)
        assert store.load_baseline(42) == {"ok": 1}
        versions = store._rows("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in versions] == list(range(1, SCHEMA_VERSION + 1))
    assert aside_files(tmp_path) == []
    with Store.open(tmp_path) as again:  # opening a current store changes nothing
        assert again.schema_version() == SCHEMA_VERSION
        assert again.load_baseline(42) == {"ok": 1}
    assert path.exists()


def test_a_store_from_a_newer_version_is_refused_untouched(tmp_path: Path):
    with Store.open(tmp_path) as store:
        store.kv_set("x", 1)
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99, 0.0)")
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")  # checkpoint: everything is in the main file now
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError) as caught:
        Store.open(tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version 99, newer than this heimdal-tui understands ({SCHEMA_VERSION})" in message
    assert digest(path) == before
    assert aside_files(tmp_path) == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    conn.close()


def check_rebuilt(data_dir: Path, original: bytes, reason: str) -> None:
    with Store.open(data_dir) as store:
        assert store.recovered is not None
        (aside,) = aside_files(data_dir)
        assert re.fullmatch(r"heimdal\.db\.corrupt-\d{8}T\d{6}", aside.name)
        assert aside.read_bytes() == original
        assert store.recovered == (
            f"the store at {data_dir / DB_FILENAME} was unreadable ({reason}); "
            f"moved aside to {aside} and rebuilt"
        )
        assert store.schema_version() == SCHEMA_VERSION
        assert store.alerts() == []
        store.kv_set("works", True)
    with Store.open(data_dir) as store:
        assert store.recovered is None
        assert store.kv_get("works") is True


def test_random_bytes_are_moved_aside_and_rebuilt(tmp_path: Path):
    garbage = random.Random(7).randbytes(16_384)
    (tmp_path / DB_FILENAME).write_bytes(garbage)
    check_rebuilt(tmp_path, garbage, "file is not a database")


def test_a_text_file_is_moved_aside_and_rebuilt(tmp_path: Path):
    text = b"# this is not a database\n" * 200
    (tmp_path / DB_FILENAME).write_bytes(text)
    check_rebuilt(tmp_path, text, "file is not a database")


def test_a_truncated_store_is_moved_aside_and_rebuilt(tmp_path: Path):
    with Store.open(tmp_path) as store:
        for i in range(300):
            store.add_audit("t", "note", ts=float(i), detail={"padding": "x" * 400})
    path = tmp_path / DB_FILENAME
    whole = path.read_bytes()
    assert len(whole) > 100_000
    cut = whole[: len(whole) // 2 + 100]  # not even on a page boundary
    path.write_bytes(cut)
    with Store.open(tmp_path) as store:
        assert store.recovered is not None
        assert "was unreadable (" in store.recovered
        aside = aside_database(tmp_path)
        assert f"moved aside to {aside} and rebuilt" in store.recovered
    assert aside.read_bytes() == cut


def test_companion_files_move_aside_too(tmp_path: Path):
    (tmp_path / DB_FILENAME).write_bytes(b"not sqlite" * 100)
    (tmp_path / f"{DB_FILENAME}-wal").write_bytes(b"old wal")
    (tmp_path / f"{DB_FILENAME}-shm").write_bytes(b"old shm")
    with Store.open(tmp_path) as store:
        assert store.recovered is not None
    names = sorted(p.name for p in aside_files(tmp_path))
    assert len(names) == 3
    assert names[1].endswith("-shm") and names[2].endswith("-wal")
    assert (tmp_path / names[2]).read_bytes() == b"old wal"


def test_two_recoveries_in_the_same_second_do_not_collide(tmp_path: Path):
    for _ in range(2):
        (tmp_path / DB_FILENAME).write_bytes(b"junk" * 100)
        with Store.open(tmp_path) as store:
            assert store.recovered is not None
    assert len(aside_files(tmp_path)) == 2


def test_a_failing_migration_rebuilds_the_store(tmp_path: Path):
    # A version 1 store that somehow already has a `baselines` table: migration 2 cannot run.
    build_v1(tmp_path, "CREATE TABLE baselines (x);")
    with Store.open(tmp_path) as store:
        assert store.recovered is not None
        assert "migration to schema version 2 failed: table baselines already exists" in store.recovered
        assert store.alert("old1") is None
        assert store.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(aside_database(tmp_path))
    # The failed migration was rolled back: the old file is as it was, still version 1.
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_a_locked_store_is_an_error_not_corruption(tmp_path: Path):
    path = build_v1(tmp_path)  # rollback-journal mode, and it needs migrating
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            Store.open(tmp_path, busy_timeout=0.2)
        assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert aside_files(tmp_path) == []
    with Store.open(tmp_path) as store:
        assert store.alert("old1") is not None


def test_a_path_under_a_file_is_an_error(tmp_path: Path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("in the way")
    data_dir = blocker / "sub"
    with pytest.raises(StoreError) as caught:
        Store.open(data_dir)
    assert str(caught.value) == f"cannot create the data directory {data_dir}: Not a directory"


def test_a_file_as_the_data_directory_is_an_error(tmp_path: Path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("in the way")
    with pytest.raises(StoreError, match=r"file.txt as the data directory: it is not a directory"):
        Store.open(blocker)


def test_a_directory_named_like_the_database_is_an_error(tmp_path: Path):
    (tmp_path / DB_FILENAME).mkdir()
    with pytest.raises(StoreError, match=r"cannot (open|use) the store at"):
        Store.open(tmp_path)
    assert aside_files(tmp_path) == []
