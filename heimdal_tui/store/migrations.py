"""The store's schema, as numbered migrations applied in order.

``MIGRATIONS[n - 1]`` takes a store from version ``n - 1`` to ``n``; the ``schema_version`` table
keeps one row per version applied (the highest is the store's version). Released migrations are
never edited: a schema change is a new entry at the end. All pending migrations run in one
transaction, so a store is either fully upgraded or untouched.

Times are capture-time floats (seconds since the epoch of the traffic: the wall clock live, the
capture's own clock in a replay); ``*_wall`` columns are the wall clock when the row was written.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import suppress

from heimdal_tui.store.base import StoreCorrupt, is_environmental

# v1: triage (alerts and their history, snoozes, allowlist) and small settings.
_V1 = (
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY,
        applied_wall REAL NOT NULL
    )""",
    """CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
        score REAL NOT NULL,
        ts REAL NOT NULL,
        device_key INTEGER NOT NULL,
        device_json TEXT NOT NULL DEFAULT '{}',
        peer TEXT,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        count INTEGER NOT NULL DEFAULT 1,
        summary TEXT NOT NULL DEFAULT '',
        evidence_json TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'open'
            CHECK (state IN ('open', 'acknowledged', 'resolved', 'false_positive')),
        updated REAL NOT NULL,
        created_wall REAL NOT NULL
    )""",
    "CREATE INDEX alerts_by_state ON alerts (state, last_seen)",
    "CREATE INDEX alerts_by_device ON alerts (device_key, last_seen)",
    "CREATE INDEX alerts_by_kind ON alerts (kind, last_seen)",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        wall_time REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        alert_id TEXT,
        device_key INTEGER,
        detail_json TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX audit_by_alert ON audit (alert_id)",
    "CREATE INDEX audit_by_device ON audit (device_key)",
    """CREATE TABLE suppressions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_key INTEGER,
        kind TEXT,
        peer TEXT,
        until REAL NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        created_wall REAL NOT NULL
    )""",
    "CREATE INDEX suppressions_by_until ON suppressions (until)",
    """CREATE TABLE allowlist (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_key INTEGER,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        created_wall REAL NOT NULL
    )""",
    # A NULL device (any device) must be unique too, and NULLs are distinct in a plain unique index.
    "CREATE UNIQUE INDEX allowlist_entry ON allowlist (ifnull(device_key, -1), kind, value)",
    """CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL
    )""",
)

# v2: what the sensor learned: per-device baselines and their drift history.
_V2 = (
    # profile_version has no declared type so it keeps whatever the caller gives (text or number).
    """CREATE TABLE baselines (
        device_key INTEGER PRIMARY KEY,
        profile_version,
        updated REAL NOT NULL,
        data_json TEXT NOT NULL
    )""",
    """CREATE TABLE drift (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_key INTEGER NOT NULL,
        ts REAL NOT NULL,
        score REAL NOT NULL,
        features_json TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX drift_by_device ON drift (device_key, ts)",
)

# v3: the Asgard link: the durable outbound queue (anonymized items exactly as sent), its
# lifetime counters, and the intelligence Asgard sent back (indicators and golden profiles).
_V3 = (
    """CREATE TABLE sync_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        payload_json TEXT NOT NULL,
        size INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'rejected')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_wall REAL NOT NULL,
        next_attempt_wall REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        done_wall REAL
    )""",
    "CREATE INDEX sync_queue_order ON sync_queue (state, priority DESC, id)",
    "CREATE INDEX sync_queue_done ON sync_queue (state, done_wall)",
    "CREATE INDEX sync_queue_due ON sync_queue (state, next_attempt_wall)",
    # Eviction order when the queue is full: lowest priority, oldest first.
    "CREATE INDEX sync_queue_evict ON sync_queue (state, priority, id)",
    # Rows per state, kept by triggers in the same transactions: depth is read without a count(*)
    # over a queue that may hold many thousand rows.
    """CREATE TABLE sync_depth (
        state TEXT PRIMARY KEY,
        n INTEGER NOT NULL DEFAULT 0
    )""",
    "INSERT INTO sync_depth (state, n) VALUES ('pending', 0), ('delivered', 0), ('rejected', 0)",
    """CREATE TRIGGER sync_depth_insert AFTER INSERT ON sync_queue BEGIN
        UPDATE sync_depth SET n = n + 1 WHERE state = new.state;
    END""",
    """CREATE TRIGGER sync_depth_delete AFTER DELETE ON sync_queue BEGIN
        UPDATE sync_depth SET n = n - 1 WHERE state = old.state;
    END""",
    """CREATE TRIGGER sync_depth_update AFTER UPDATE OF state ON sync_queue
    WHEN old.state != new.state BEGIN
        UPDATE sync_depth SET n = n - 1 WHERE state = old.state;
        UPDATE sync_depth SET n = n + 1 WHERE state = new.state;
    END""",
    """CREATE TABLE sync_counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE intel_indicators (
        value TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('ip', 'cidr', 'domain')),
        confidence REAL NOT NULL,
        feed TEXT NOT NULL DEFAULT '',
        expiry REAL,
        version INTEGER NOT NULL,
        PRIMARY KEY (value, type)
    )""",
    """CREATE TABLE intel_profiles (
        device_type TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        data_json TEXT NOT NULL,
        intel_version INTEGER NOT NULL
    )""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The store's schema version; 0 for an empty database."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`; the version it had before.

    The caller has refused stores newer than this code. A failing migration raises StoreCorrupt
    (after rolling back), unless the failure is environmental (locked, disk full), which propagates
    as the sqlite3 error it is.
    """
    if current_version(conn) >= SCHEMA_VERSION:
        return SCHEMA_VERSION
    conn.execute("BEGIN IMMEDIATE")
    target = 0
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        before = current_version(conn)
        for target in range(before + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_wall) VALUES (?, ?)", (target, time.time())
            )
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if is_environmental(exc):
            raise
        raise StoreCorrupt(f"migration to schema version {target} failed: {exc}") from exc
    return before
