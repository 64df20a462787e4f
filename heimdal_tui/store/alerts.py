"""Alerts as the store keeps them, and their triage state changes (each one audited).

An alert record is a plain dict (see :func:`alert_record` to build one from an
:class:`~heimdal_tui.detect.alerts.Alert`)::

    id, kind, severity ("low".."critical"), score, ts, device_key, device (dict), peer,
    first_seen, last_seen, count, summary, evidence (dict), state, updated

Times are capture-time floats. ``state`` and ``updated`` may be left out: a new alert is then
``open`` and an existing one keeps the state the operator gave it; ``updated`` defaults to
``last_seen``. Records read back carry the same keys plus ``created_wall``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from heimdal_tui.detect.evidence import plain_evidence
from heimdal_tui.store.audit import insert_audit
from heimdal_tui.store.base import StoreBase, dumps, loads

if TYPE_CHECKING:
    from heimdal_tui.detect.alerts import Alert

ALERT_STATES = ("open", "acknowledged", "resolved", "false_positive")
ACTIVE_STATES = ("open", "acknowledged")
SEVERITIES = ("low", "medium", "high", "critical")
_REQUIRED = ("id", "kind", "severity", "score", "ts", "device_key", "first_seen", "last_seen")

_COLUMNS = (
    "id",
    "kind",
    "severity",
    "score",
    "ts",
    "device_key",
    "device_json",
    "peer",
    "first_seen",
    "last_seen",
    "count",
    "summary",
    "evidence_json",
    "state",
    "updated",
    "created_wall",
)
_INSERT = f"INSERT INTO alerts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
# On conflict every column is refreshed but the creation time, and the state unless given.
_UPDATED = [c for c in _COLUMNS if c not in ("id", "created_wall", "state")]
_UPSERT_KEEP_STATE = f"{_INSERT} ON CONFLICT (id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in _UPDATED
)
_UPSERT_SET_STATE = f"{_UPSERT_KEEP_STATE}, state = excluded.state"


def alert_record(alert: Alert, updated: float | None = None) -> dict[str, Any]:
    """The store's record of an in-memory alert."""
    device = alert.device
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": str(alert.severity),
        "score": float(alert.score),
        "ts": alert.ts,
        "device_key": int(device.key),
        "device": {"mac": device.mac, "ip": device.ip, "name": device.name, "type": device.type},
        "peer": alert.peer,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "count": alert.count,
        "summary": alert.summary,
        "evidence": plain_evidence(alert.evidence),
        "state": str(alert.state),
        "updated": alert.last_seen if updated is None else updated,
    }


def _check_state(state: str) -> str:
    text = str(state)
    if text not in ALERT_STATES:
        raise ValueError(f"unknown alert state {state!r} (one of {', '.join(ALERT_STATES)})")
    return text


def _row_values(record: Mapping[str, Any], wall: float) -> tuple[Any, ...]:
    missing = [k for k in _REQUIRED if record.get(k) is None]
    if missing:
        raise ValueError(f"alert record {record.get('id')!r} lacks {', '.join(missing)}")
    severity = str(record["severity"])
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")
    return (
        str(record["id"]),
        str(record["kind"]),
        severity,
        float(record["score"]),
        float(record["ts"]),
        int(record["device_key"]),
        dumps(record.get("device") or {}),
        record.get("peer"),
        float(record["first_seen"]),
        float(record["last_seen"]),
        int(record.get("count", 1)),
        str(record.get("summary", "")),
        dumps(record.get("evidence") or {}),
        _check_state(record.get("state") or "open"),
        float(record["last_seen"] if record.get("updated") is None else record["updated"]),
        wall,
    )


def _alert_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "severity": row["severity"],
        "score": row["score"],
        "ts": row["ts"],
        "device_key": row["device_key"],
        "device": loads(row["device_json"]),
        "peer": row["peer"],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "count": row["count"],
        "summary": row["summary"],
        "evidence": loads(row["evidence_json"]),
        "state": row["state"],
        "updated": row["updated"],
        "created_wall": row["created_wall"],
    }


def _one_or_many(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


class AlertsMixin(StoreBase):
    def upsert_alert(self, record: Mapping[str, Any]) -> None:
        """Insert the alert, or refresh the stored one with the same id."""
        self.upsert_alerts([record])

    def upsert_alerts(self, records: Iterable[Mapping[str, Any]]) -> int:
        """:meth:`upsert_alert` for many records in one transaction; how many were written."""
        wall = time.time()
        prepared = [(_row_values(r, wall), "state" in r and r["state"] is not None) for r in records]
        with self._write() as conn:
            for values, set_state in prepared:
                conn.execute(_UPSERT_SET_STATE if set_state else _UPSERT_KEEP_STATE, values)
        return len(prepared)

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        row = self._row("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return None if row is None else _alert_dict(row)

    def alerts(
        self,
        state: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        device_key: int | None = None,
        severity_at_least: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored alerts matching every filter given, most recently seen first. ``state`` and
        ``kind`` take one value or several."""
        where: list[str] = []
        params: list[Any] = []
        if state is not None:
            states = [_check_state(s) for s in _one_or_many(state)]
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        if kind is not None:
            kinds = _one_or_many(kind)
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            params.extend(kinds)
        if device_key is not None:
            where.append("device_key = ?")
            params.append(int(device_key))
        if severity_at_least is not None:
            floor = str(severity_at_least)
            if floor not in SEVERITIES:
                raise ValueError(f"unknown severity {floor!r} (one of {', '.join(SEVERITIES)})")
            allowed = SEVERITIES[SEVERITIES.index(floor) :]
            where.append(f"severity IN ({', '.join('?' * len(allowed))})")
            params.extend(allowed)
        sql = "SELECT * FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY last_seen DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_alert_dict(row) for row in self._rows(sql, params)]

    def count_alerts(self, state: str | Iterable[str] | None = None) -> int:
        if state is None:
            row = self._row("SELECT count(*) FROM alerts")
        else:
            states = [_check_state(s) for s in _one_or_many(state)]
            row = self._row(
                f"SELECT count(*) FROM alerts WHERE state IN ({', '.join('?' * len(states))})", states
            )
        return int(row[0]) if row is not None else 0

    def set_alert_state(self, alert_id: str, state: str, actor: str, reason: str, ts: float) -> None:
        """Move the alert to ``state`` (at capture time ``ts``) and record who did it and why in the
        audit trail, in one transaction. KeyError when no such alert is stored."""
        new_state = _check_state(state)
        with self._write() as conn:
            row = conn.execute("SELECT state, device_key FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise KeyError(alert_id)
            conn.execute("UPDATE alerts SET state = ?, updated = ? WHERE id = ?", (new_state, ts, alert_id))
            insert_audit(
                conn,
                ts=ts,
                actor=actor,
                action="set_state",
                alert_id=alert_id,
                device_key=row["device_key"],
                detail={"from": row["state"], "to": new_state, "reason": reason},
            )

    def prune_alerts(self, keep: int) -> int:
        """Keep at most ``keep`` alerts: the closed ones least recently seen go first, then the
        oldest of all. How many were deleted (their audit trail stays)."""
        with self._write() as conn:
            total = int(conn.execute("SELECT count(*) FROM alerts").fetchone()[0])
            excess = total - max(0, keep)
            if excess <= 0:
                return 0
            conn.execute(
                """DELETE FROM alerts WHERE id IN (
                    SELECT id FROM alerts
                    ORDER BY state IN ('open', 'acknowledged'), last_seen, id
                    LIMIT ?)""",
                (excess,),
            )
            return excess
