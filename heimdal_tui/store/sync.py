"""The Asgard link's durable state: the outbound queue, its lifetime counters, and the intelligence
Asgard sent back.

Queue rows hold items already anonymized, serialized exactly as they will be sent (``payload_json``),
so what is stored is what leaves the network and nothing more. A row is ``pending`` until Asgard
acknowledges it (``delivered``) or refuses it for good (``rejected``). The idempotency key is unique:
enqueuing an item twice keeps one row, and Asgard uses the same key to refuse a second copy.

Times here are wall-clock epoch seconds (delivery is a wall-clock matter, unlike detection).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from heimdal_tui.store.base import StoreBase, dumps, loads

QUEUE_STATES = ("pending", "delivered", "rejected")
COUNTER_NAMES = ("sent", "failed", "retried", "rejected", "dropped_full", "dropped_operator")
# Not more ids than this in one NOT IN (...) list (SQLite's default limit is 32,766 variables).
_MAX_EXCLUDED = 1000


def _queue_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "kind": row["kind"],
        "priority": int(row["priority"]),
        "idempotency_key": row["idempotency_key"],
        "payload_json": row["payload_json"],
        "size": int(row["size"]),
        "state": row["state"],
        "attempts": int(row["attempts"]),
        "created": float(row["created_wall"]),
        "next_attempt": float(row["next_attempt_wall"]),
        "last_error": row["last_error"],
        "done": None if row["done_wall"] is None else float(row["done_wall"]),
    }


def _excluding(ids: Collection[int]) -> tuple[str, list[int]]:
    chosen = [int(i) for i in list(ids)[:_MAX_EXCLUDED]]
    if not chosen:
        return "", []
    return f" AND id NOT IN ({', '.join('?' * len(chosen))})", chosen


def _add_counters(conn: sqlite3.Connection, counters: Mapping[str, int]) -> None:
    for name, value in counters.items():
        if name not in COUNTER_NAMES:
            raise ValueError(f"unknown sync counter {name!r} (one of {', '.join(COUNTER_NAMES)})")
        if value:
            conn.execute(
                "INSERT INTO sync_counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (name, int(value)),
            )


class SyncMixin(StoreBase):
    # -- queue: adding ---------------------------------------------------------------------------
    def sync_enqueue(
        self,
        items: Iterable[tuple[str, int, str, str]],
        *,
        max_items: int,
        now: float,
        protect: Collection[int] = (),
    ) -> tuple[int, int]:
        """Queue ``(kind, priority, idempotency_key, payload_json)`` items in one transaction; an
        item whose key is already queued (in any state) is skipped. Past ``max_items`` undelivered
        rows, the excess goes: rejected rows first, then the lowest priority, oldest first (the new
        items compete like the others; rows in ``protect``, being sent, are spared). Returns
        (inserted, dropped)."""
        rows = [
            (str(k), int(p), str(key), str(payload), len(payload.encode()), now)
            for k, p, key, payload in items
        ]
        if not rows:
            return 0, 0
        with self._write() as conn:
            inserted = 0
            for row in rows:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO sync_queue"
                    " (kind, priority, idempotency_key, payload_json, size, created_wall)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
                inserted += cursor.rowcount
            dropped = 0
            if inserted:
                waiting = int(
                    conn.execute(
                        "SELECT sum(n) FROM sync_depth WHERE state IN ('pending', 'rejected')"
                    ).fetchone()[0]
                )
                excess = waiting - max(1, int(max_items))
                clause, params = _excluding(protect)
                for state in ("rejected", "pending"):  # never to be sent first, then lowest priority, oldest
                    if excess <= 0:
                        break
                    gone = conn.execute(
                        "DELETE FROM sync_queue WHERE id IN (SELECT id FROM sync_queue"
                        f" WHERE state = ?{clause} ORDER BY priority, id LIMIT ?)",
                        [state, *params, excess],
                    ).rowcount
                    dropped += gone
                    excess -= gone
                _add_counters(conn, {"dropped_full": dropped})
            return inserted, dropped

    # -- queue: sending --------------------------------------------------------------------------
    def sync_next_batch(
        self, now: float, limit: int, max_bytes: int, exclude: Collection[int] = ()
    ) -> list[dict[str, Any]]:
        """The next items to send: the highest-priority pending item due by ``now`` decides the
        kind (one endpoint per batch), then up to ``limit`` due items of that kind, highest
        priority and oldest first, within ``max_bytes`` of payload (always at least one)."""
        clause, params = _excluding(exclude)
        with self._lock:
            conn = self._connection()
            head = conn.execute(
                "SELECT kind FROM sync_queue WHERE state = 'pending' AND next_attempt_wall <= ?"
                f"{clause} ORDER BY priority DESC, id LIMIT 1",
                [now, *params],
            ).fetchone()
            if head is None:
                return []
            rows = conn.execute(
                "SELECT * FROM sync_queue WHERE state = 'pending' AND kind = ? AND next_attempt_wall <= ?"
                f"{clause} ORDER BY priority DESC, id LIMIT ?",
                [head["kind"], now, *params, max(1, int(limit))],
            ).fetchall()
        batch: list[dict[str, Any]] = []
        total = 0
        for row in rows:
            item = _queue_dict(row)
            if batch and total + item["size"] > max_bytes:
                break
            batch.append(item)
            total += item["size"]
        return batch

    def sync_next_due(self, exclude: Collection[int] = ()) -> float | None:
        """The earliest time a pending item may be sent (None when nothing is pending)."""
        clause, params = _excluding(exclude)
        row = self._row(
            f"SELECT min(next_attempt_wall) FROM sync_queue WHERE state = 'pending'{clause}", params
        )
        return None if row is None or row[0] is None else float(row[0])

    def sync_mark_delivered(
        self, ids: Sequence[int], now: float, counters: Mapping[str, int] | None = None
    ) -> int:
        """Asgard acknowledged these rows (accepted, or already had them). How many were pending."""
        with self._write() as conn:
            done = 0
            for item_id in ids:
                done += conn.execute(
                    "UPDATE sync_queue SET state = 'delivered', done_wall = ?, last_error = NULL"
                    " WHERE id = ? AND state = 'pending'",
                    (now, int(item_id)),
                ).rowcount
            _add_counters(conn, {"sent": done, **(counters or {})})
            return done

    def sync_mark_rejected(
        self, rejected: Sequence[tuple[int, str]], now: float, counters: Mapping[str, int] | None = None
    ) -> int:
        """Asgard refused these rows for good: ``(id, error)``. They stay, visible, until dropped."""
        with self._write() as conn:
            done = 0
            for item_id, error in rejected:
                done += conn.execute(
                    "UPDATE sync_queue SET state = 'rejected', done_wall = ?, attempts = attempts + 1,"
                    " last_error = ? WHERE id = ? AND state = 'pending'",
                    (now, error, int(item_id)),
                ).rowcount
            _add_counters(conn, {"rejected": done, **(counters or {})})
            return done

    def sync_mark_failed(
        self,
        ids: Sequence[int],
        error: str,
        next_attempt: float,
        counters: Mapping[str, int] | None = None,
    ) -> int:
        """A delivery attempt of these rows failed: count it, keep the error, set the next try."""
        with self._write() as conn:
            done = 0
            for item_id in ids:
                done += conn.execute(
                    "UPDATE sync_queue SET attempts = attempts + 1, last_error = ?,"
                    " next_attempt_wall = ? WHERE id = ? AND state = 'pending'",
                    (error, next_attempt, int(item_id)),
                ).rowcount
            _add_counters(conn, {"failed": done, **(counters or {})})
            return done

    # -- queue: operator -------------------------------------------------------------------------
    def sync_retry_now(self, item_id: int | None = None, now: float = 0.0) -> int:
        """Make one pending (or rejected) row, or every pending row, due at ``now``."""
        with self._write() as conn:
            if item_id is None:
                return conn.execute(
                    "UPDATE sync_queue SET next_attempt_wall = ? WHERE state = 'pending'"
                    " AND next_attempt_wall > ?",
                    (now, now),
                ).rowcount
            return conn.execute(
                "UPDATE sync_queue SET next_attempt_wall = ?, state = 'pending', done_wall = NULL"
                " WHERE id = ? AND state IN ('pending', 'rejected')",
                (now, int(item_id)),
            ).rowcount

    def sync_drop(self, item_id: int) -> bool:
        """The operator removed an undelivered row; counted as dropped."""
        with self._write() as conn:
            gone = conn.execute(
                "DELETE FROM sync_queue WHERE id = ? AND state IN ('pending', 'rejected')", (int(item_id),)
            ).rowcount
            _add_counters(conn, {"dropped_operator": gone})
            return gone > 0

    def prune_delivered(self, older_than: float) -> int:
        """Forget delivered rows acknowledged before wall time ``older_than``; how many went.
        (Their idempotency keys go with them: Asgard still refuses a copy if one is ever re-sent.)"""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM sync_queue WHERE state = 'delivered' AND done_wall < ?", (float(older_than),)
            ).rowcount

    # -- queue: reading --------------------------------------------------------------------------
    def sync_item(self, item_id: int) -> dict[str, Any] | None:
        row = self._row("SELECT * FROM sync_queue WHERE id = ?", (int(item_id),))
        return None if row is None else _queue_dict(row)

    def sync_items(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` undelivered rows: pending by priority (highest first), oldest first,
        then the rejected ones."""
        limit = max(0, int(limit))
        with self._lock:
            conn = self._connection()
            rows = conn.execute(
                "SELECT * FROM sync_queue WHERE state = 'pending' ORDER BY priority DESC, id LIMIT ?",
                (limit,),
            ).fetchall()
            if len(rows) < limit:
                rows += conn.execute(
                    "SELECT * FROM sync_queue WHERE state = 'rejected' ORDER BY priority DESC, id LIMIT ?",
                    (limit - len(rows),),
                ).fetchall()
        return [_queue_dict(r) for r in rows]

    def sync_count(self, state: str = "pending") -> int:
        if state not in QUEUE_STATES:
            raise ValueError(f"unknown queue state {state!r} (one of {', '.join(QUEUE_STATES)})")
        row = self._row("SELECT n FROM sync_depth WHERE state = ?", (state,))
        return int(row[0]) if row is not None else 0

    def sync_counters(self) -> dict[str, int]:
        """Lifetime counters (every name present, 0 when never counted)."""
        found = {r["name"]: int(r["value"]) for r in self._rows("SELECT * FROM sync_counters")}
        return {name: found.get(name, 0) for name in COUNTER_NAMES}

    def sync_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these idempotency keys are queued (in any state)."""
        wanted = list(dict.fromkeys(str(k) for k in keys))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._rows(
                f"SELECT idempotency_key FROM sync_queue WHERE idempotency_key IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update(r[0] for r in rows)
        return found

    # -- intelligence ----------------------------------------------------------------------------
    def intel_save(
        self,
        version: int,
        indicators: Iterable[Mapping[str, Any]],
        profiles: Mapping[str, Mapping[str, Any]],
        *,
        full: bool,
        withdrawn: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Record an intelligence update in one transaction: a full one replaces what was kept, a
        delta adds/replaces ``indicators`` (dicts: value, type, confidence, feed, expiry) and
        ``profiles`` (device type -> profile JSON with a ``version``) and removes ``withdrawn``
        (value, type) pairs."""
        with self._write() as conn:
            if full:
                conn.execute("DELETE FROM intel_indicators")
                conn.execute("DELETE FROM intel_profiles")
            for value, kind in withdrawn:
                conn.execute("DELETE FROM intel_indicators WHERE value = ? AND type = ?", (value, kind))
            conn.executemany(
                "INSERT INTO intel_indicators (value, type, confidence, feed, expiry, version)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (value, type) DO UPDATE SET"
                " confidence = excluded.confidence, feed = excluded.feed, expiry = excluded.expiry,"
                " version = excluded.version",
                [
                    (
                        str(i["value"]),
                        str(i["type"]),
                        float(i["confidence"]),
                        str(i.get("feed") or ""),
                        None if i.get("expiry") is None else float(i["expiry"]),
                        int(version),
                    )
                    for i in indicators
                ],
            )
            conn.executemany(
                "INSERT INTO intel_profiles (device_type, version, data_json, intel_version)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (device_type) DO UPDATE SET version = excluded.version,"
                " data_json = excluded.data_json, intel_version = excluded.intel_version",
                [
                    (str(kind), str(body.get("version", version)), dumps(dict(body)), int(version))
                    for kind, body in profiles.items()
                ],
            )
            conn.execute(
                "INSERT INTO kv (key, value_json) VALUES ('asgard.intel_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json",
                (dumps(int(version)),),
            )

    def intel_version(self) -> int:
        row = self._row("SELECT value_json FROM kv WHERE key = 'asgard.intel_version'")
        return 0 if row is None else int(loads(row["value_json"]))

    def intel_indicators(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM intel_indicators ORDER BY type, value")
        return [
            {
                "value": r["value"],
                "type": r["type"],
                "confidence": float(r["confidence"]),
                "feed": r["feed"],
                "expiry": None if r["expiry"] is None else float(r["expiry"]),
                "version": int(r["version"]),
            }
            for r in rows
        ]

    def intel_profiles(self) -> dict[str, dict[str, Any]]:
        rows = self._rows("SELECT * FROM intel_profiles ORDER BY device_type")
        return {r["device_type"]: dict(loads(r["data_json"])) for r in rows}

    def intel_expire(self, now: float) -> int:
        """Forget indicators whose expiry passed by wall time ``now``."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM intel_indicators WHERE expiry IS NOT NULL AND expiry <= ?", (float(now),)
            ).rowcount
