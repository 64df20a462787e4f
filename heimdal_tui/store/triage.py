"""Standing triage decisions: suppressions (snoozes until a capture time) and the allowlist.

A suppression matches a finding when every field it sets (device, kind, peer) equals the finding's
and the capture time is before ``until`` (as :class:`heimdal_tui.detect.alerts.Suppression`). An
allowlist entry says a value (a peer, a port, a domain, as text) is expected for an alert kind,
on one device or (``device_key`` None) on every device.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from heimdal_tui.store.base import StoreBase


def _suppression_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "device_key": row["device_key"],
        "kind": row["kind"],
        "peer": row["peer"],
        "until": row["until"],
        "reason": row["reason"],
        "created": row["created"],
        "created_wall": row["created_wall"],
    }


def _allow_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "device_key": row["device_key"],
        "kind": row["kind"],
        "value": row["value"],
        "reason": row["reason"],
        "created": row["created"],
        "created_wall": row["created_wall"],
    }


def _key(device_key: int | None) -> int | None:
    return None if device_key is None else int(device_key)


class TriageMixin(StoreBase):
    # -- suppressions ---------------------------------------------------------------------------
    def add_suppression(
        self,
        until: float,
        *,
        device_key: int | None = None,
        kind: str | None = None,
        peer: str | None = None,
        reason: str = "",
        created: float | None = None,
    ) -> int:
        """Silence findings matching every field given until capture time ``until``; the rule's id.
        ``created`` is the capture time it was made (default: now)."""
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO suppressions (device_key, kind, peer, until, reason, created, created_wall)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _key(device_key),
                    kind,
                    peer,
                    float(until),
                    reason,
                    now if created is None else created,
                    now,
                ),
            )
            return int(cursor.lastrowid or 0)

    def suppressions(self) -> list[dict[str, Any]]:
        """Every suppression rule, expired or not, oldest first."""
        return [_suppression_dict(r) for r in self._rows("SELECT * FROM suppressions ORDER BY id")]

    def active_suppressions(self, now: float) -> list[dict[str, Any]]:
        """The rules still in force at capture time ``now``."""
        rows = self._rows("SELECT * FROM suppressions WHERE until > ? ORDER BY id", (float(now),))
        return [_suppression_dict(r) for r in rows]

    def remove_suppression(self, suppression_id: int) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM suppressions WHERE id = ?", (int(suppression_id),))
            return cursor.rowcount > 0

    def expire_suppressions(self, now: float) -> int:
        """Delete the rules that ended by capture time ``now``; how many."""
        with self._write() as conn:
            return conn.execute("DELETE FROM suppressions WHERE until <= ?", (float(now),)).rowcount

    def is_suppressed(self, device_key: int, kind: str, peer: str | None, now: float) -> bool:
        row = self._row(
            """SELECT 1 FROM suppressions
               WHERE until > ?
                 AND (device_key IS NULL OR device_key = ?)
                 AND (kind IS NULL OR kind = ?)
                 AND (peer IS NULL OR peer IS ?)
               LIMIT 1""",
            (float(now), int(device_key), kind, peer),
        )
        return row is not None

    # -- allowlist ------------------------------------------------------------------------------
    def add_allowlist(
        self,
        kind: str,
        value: str,
        *,
        device_key: int | None = None,
        reason: str = "",
        created: float | None = None,
    ) -> int:
        """Allow ``value`` for alert ``kind`` on ``device_key`` (None: every device). Adding an
        entry that exists updates its reason. The entry's id."""
        now = time.time()
        key = _key(device_key)
        with self._write() as conn:
            row = conn.execute(
                "SELECT id FROM allowlist WHERE ifnull(device_key, -1) = ifnull(?, -1)"
                " AND kind = ? AND value = ?",
                (key, kind, value),
            ).fetchone()
            if row is not None:
                conn.execute("UPDATE allowlist SET reason = ? WHERE id = ?", (reason, row["id"]))
                return int(row["id"])
            cursor = conn.execute(
                "INSERT INTO allowlist (device_key, kind, value, reason, created, created_wall)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, kind, value, reason, now if created is None else created, now),
            )
            return int(cursor.lastrowid or 0)

    def allowlist(self, kind: str | None = None, device_key: int | None = None) -> list[dict[str, Any]]:
        """Entries, oldest first; with ``device_key``, that device's and the every-device ones."""
        where: list[str] = []
        params: list[Any] = []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if device_key is not None:
            where.append("(device_key IS NULL OR device_key = ?)")
            params.append(int(device_key))
        sql = "SELECT * FROM allowlist"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_allow_dict(r) for r in self._rows(sql + " ORDER BY id", params)]

    def is_allowlisted(self, device_key: int, kind: str, value: str) -> bool:
        row = self._row(
            "SELECT 1 FROM allowlist WHERE (device_key IS NULL OR device_key = ?)"
            " AND kind = ? AND value = ? LIMIT 1",
            (int(device_key), kind, value),
        )
        return row is not None

    def remove_allowlist(self, entry_id: int) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM allowlist WHERE id = ?", (int(entry_id),)).rowcount > 0
