"""What the sensor has learned: per-device baselines (opaque JSON from the caller), the drift
history of each device against its baseline, and a small key/value table for sensor state (e.g.
when learning started)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from heimdal_tui.store.base import StoreBase, dumps, loads

# Drift points kept per device when add_drift is not told otherwise.
DRIFT_KEEP = 1_000

_PRUNE_DEVICE_DRIFT = """DELETE FROM drift WHERE device_key = ? AND id NOT IN (
    SELECT id FROM drift WHERE device_key = ? ORDER BY ts DESC, id DESC LIMIT ?)"""
_RECENT_DRIFT = """SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY device_key ORDER BY id DESC) AS rank FROM drift)
    WHERE rank <= ? ORDER BY device_key, id"""
_PRUNE_ALL_DRIFT = """DELETE FROM drift WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY device_key ORDER BY ts DESC, id DESC) AS rank
        FROM drift)
    WHERE rank > ?)"""


class LearnedMixin(StoreBase):
    # -- baselines ------------------------------------------------------------------------------
    def save_baseline(
        self,
        device_key: int,
        data: Mapping[str, Any],
        profile_version: str | int | None = None,
        *,
        updated: float | None = None,
    ) -> None:
        """Store (replace) a device's baseline. ``data`` must be JSON-ready; ``updated`` is the
        capture time it describes (default: now)."""
        self.save_baselines([(device_key, data, profile_version)], updated=updated)

    def save_baselines(
        self,
        items: Iterable[tuple[int, Mapping[str, Any], str | int | None]],
        *,
        updated: float | None = None,
    ) -> int:
        """:meth:`save_baseline` for many ``(device_key, data, profile_version)`` in one transaction."""
        when = time.time() if updated is None else float(updated)
        count = 0

        def rows() -> Iterator[tuple[int, str | int | None, float, str]]:
            # Serialised as sqlite asks for them: one baseline's JSON in memory at a time.
            nonlocal count
            for key, data, version in items:
                count += 1
                yield int(key), version, when, dumps(dict(data))

        with self._write() as conn:
            conn.executemany(
                "INSERT INTO baselines (device_key, profile_version, updated, data_json) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device_key) DO UPDATE SET profile_version = excluded.profile_version,"
                " updated = excluded.updated, data_json = excluded.data_json",
                rows(),
            )
        return count

    def load_baseline(self, device_key: int) -> dict[str, Any] | None:
        row = self._row("SELECT data_json FROM baselines WHERE device_key = ?", (int(device_key),))
        return None if row is None else dict(loads(row["data_json"]))

    def baseline_info(self, device_key: int) -> dict[str, Any] | None:
        """``{"device_key", "profile_version", "updated", "data"}`` for one device, or None."""
        row = self._row("SELECT * FROM baselines WHERE device_key = ?", (int(device_key),))
        if row is None:
            return None
        return {
            "device_key": row["device_key"],
            "profile_version": row["profile_version"],
            "updated": row["updated"],
            "data": loads(row["data_json"]),
        }

    def all_baselines(self) -> dict[int, dict[str, Any]]:
        rows = self._rows("SELECT device_key, data_json FROM baselines ORDER BY device_key")
        return {int(r["device_key"]): dict(loads(r["data_json"])) for r in rows}

    def delete_baseline(self, device_key: int) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM baselines WHERE device_key = ?", (int(device_key),)).rowcount > 0

    # -- drift ----------------------------------------------------------------------------------
    def add_drift(
        self,
        device_key: int,
        ts: float,
        score: float,
        features: Mapping[str, Any] | None = None,
        *,
        keep: int | None = DRIFT_KEEP,
    ) -> None:
        """Record a device's drift score at capture time ``ts``; then keep only its ``keep`` newest
        points (None: keep everything)."""
        key = int(device_key)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO drift (device_key, ts, score, features_json) VALUES (?, ?, ?, ?)",
                (key, float(ts), float(score), dumps(dict(features or {}))),
            )
            if keep is not None:
                conn.execute(_PRUNE_DEVICE_DRIFT, (key, key, max(0, int(keep))))

    def add_drifts(
        self,
        points: Iterable[tuple[int, float, float, Mapping[str, Any] | None]],
        *,
        keep: int | None = DRIFT_KEEP,
    ) -> int:
        """:meth:`add_drift` for many ``(device_key, ts, score, features)`` in one transaction (the
        engine scores every active device at once); how many were written."""
        rows = [
            (int(key), float(ts), float(score), dumps(dict(features or {})))
            for key, ts, score, features in points
        ]
        if not rows:
            return 0
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO drift (device_key, ts, score, features_json) VALUES (?, ?, ?, ?)", rows
            )
            if keep is not None:
                for key in dict.fromkeys(row[0] for row in rows):
                    conn.execute(_PRUNE_DEVICE_DRIFT, (key, key, max(0, int(keep))))
        return len(rows)

    def drift_histories(self, limit: int = 100) -> dict[int, list[dict[str, Any]]]:
        """Every device's ``limit`` last drift points in the order they were written (a late
        point for an earlier interval comes where it was scored, as in the engine), one query."""
        rows = self._rows(_RECENT_DRIFT, (max(0, int(limit)),))
        out: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(int(row["device_key"]), []).append(_drift_dict(row))
        return out

    def drift_history(self, device_key: int, limit: int = 100) -> list[dict[str, Any]]:
        """The device's ``limit`` newest drift points, oldest first (ready to plot)."""
        rows = self._rows(
            "SELECT * FROM drift WHERE device_key = ? ORDER BY ts DESC, id DESC LIMIT ?",
            (int(device_key), int(limit)),
        )
        return [_drift_dict(r) for r in reversed(rows)]

    def prune_drift(self, keep: int) -> int:
        """Keep only the ``keep`` newest drift points of every device; how many were deleted."""
        with self._write() as conn:
            return conn.execute(_PRUNE_ALL_DRIFT, (max(0, int(keep)),)).rowcount

    # -- key/value ------------------------------------------------------------------------------
    def kv_get(self, key: str, default: Any = None) -> Any:
        row = self._row("SELECT value_json FROM kv WHERE key = ?", (key,))
        return default if row is None else loads(row["value_json"])

    def kv_set(self, key: str, value: Any) -> None:
        """Store a JSON-ready value under ``key`` (replacing any)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO kv (key, value_json) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json",
                (key, dumps(value)),
            )

    def kv_delete(self, key: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    def kv_items(self) -> dict[str, Any]:
        return {r["key"]: loads(r["value_json"]) for r in self._rows("SELECT * FROM kv ORDER BY key")}


def _drift_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "device_key": row["device_key"],
        "ts": row["ts"],
        "score": row["score"],
        "features": loads(row["features_json"]),
    }
