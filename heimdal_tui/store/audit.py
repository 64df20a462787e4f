"""The triage history: who changed what, when, and why (alert state changes, snoozes, allowlist
edits, threshold changes). Rows are only ever added."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from heimdal_tui.store.base import StoreBase, dumps, loads


def insert_audit(
    conn: sqlite3.Connection,
    *,
    ts: float,
    actor: str,
    action: str,
    alert_id: str | None = None,
    device_key: int | None = None,
    detail: Mapping[str, Any] | None = None,
    wall_time: float | None = None,
) -> int:
    """Add an audit row inside the caller's transaction; its id."""
    cursor = conn.execute(
        "INSERT INTO audit (ts, wall_time, actor, action, alert_id, device_key, detail_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            float(ts),
            time.time() if wall_time is None else float(wall_time),
            str(actor),
            str(action),
            alert_id,
            None if device_key is None else int(device_key),
            dumps(dict(detail or {})),
        ),
    )
    return int(cursor.lastrowid or 0)


def _audit_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ts": row["ts"],
        "wall_time": row["wall_time"],
        "actor": row["actor"],
        "action": row["action"],
        "alert_id": row["alert_id"],
        "device_key": row["device_key"],
        "detail": loads(row["detail_json"]),
    }


class AuditMixin(StoreBase):
    def add_audit(
        self,
        actor: str,
        action: str,
        *,
        ts: float,
        alert_id: str | None = None,
        device_key: int | None = None,
        detail: Mapping[str, Any] | None = None,
        wall_time: float | None = None,
    ) -> int:
        """Record an operator action at capture time ``ts`` (``wall_time`` defaults to now);
        ``detail`` says what changed and why (JSON-ready). The new row's id."""
        with self._write() as conn:
            return insert_audit(
                conn,
                ts=ts,
                actor=actor,
                action=action,
                alert_id=alert_id,
                device_key=device_key,
                detail=detail,
                wall_time=wall_time,
            )

    def audit(
        self, alert_id: str | None = None, device_key: int | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """Audit rows about ``alert_id`` and/or ``device_key`` (all when neither), newest first."""
        where: list[str] = []
        params: list[Any] = []
        if alert_id is not None:
            where.append("alert_id = ?")
            params.append(alert_id)
        if device_key is not None:
            where.append("device_key = ?")
            params.append(int(device_key))
        sql = "SELECT * FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_audit_dict(row) for row in self._rows(sql, params)]
