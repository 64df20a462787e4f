"""Keeping the store small (an SD card): deleting what retention no longer needs, in small batches,
and handing freed pages back to the file system.

Only closed data goes: resolved and false-positive alerts, drift history, audit rows. Open and
acknowledged alerts, baselines, suppressions, the allowlist and sensor state are never deleted here.
Every delete is one short transaction of at most ``limit`` rows, so the engine's writes interleave
with a long prune instead of waiting for it. These are maintenance writes: while the store is
degraded they raise StoreDegraded instead of being queued.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from heimdal_tui.store.base import StoreBase

BATCH = 500

_CLOSED = "state IN ('resolved', 'false_positive')"


@dataclass(frozen=True, slots=True)
class StoreSize:
    """``used`` bytes hold data (pages minus free pages); ``file`` and ``wal`` are what the files
    take on disk. ``auto_vacuum`` is none, full or incremental."""

    page_size: int
    pages: int
    free_pages: int
    file: int
    wal: int
    auto_vacuum: str

    @property
    def used(self) -> int:
        return (self.pages - self.free_pages) * self.page_size

    @property
    def on_disk(self) -> int:
        return self.file + self.wal


_AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}


def _file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class MaintenanceMixin(StoreBase):
    def size(self) -> StoreSize:
        with self._lock:
            conn = self._connection()
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
            free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            mode = int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
        return StoreSize(
            page_size=page_size,
            pages=pages,
            free_pages=free,
            file=_file_size(self.path),
            wal=_file_size(Path(f"{self.path}-wal")),
            auto_vacuum=_AUTO_VACUUM.get(mode, str(mode)),
        )

    def _delete(self, table: str, where: str, order: str, params: tuple[float, ...], limit: int) -> int:
        with self._write(defer=False) as conn:
            return int(
                conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN ("
                    f"SELECT rowid FROM {table} WHERE {where} ORDER BY {order} LIMIT ?)",
                    (*params, max(0, int(limit))),
                ).rowcount
            )

    def prune_closed_alerts(self, before: float | None = None, limit: int = BATCH) -> int:
        """Delete up to ``limit`` closed alerts last seen before capture time ``before`` (None: any
        age), least recently seen first; how many. Their audit rows stay (audit has its own age)."""
        if before is None:
            return self._delete("alerts", _CLOSED, "last_seen, id", (), limit)
        return self._delete(
            "alerts", f"{_CLOSED} AND last_seen < ?", "last_seen, id", (float(before),), limit
        )

    def prune_drift_before(self, before: float | None = None, limit: int = BATCH) -> int:
        """Delete up to ``limit`` drift points older than capture time ``before`` (None: the oldest)."""
        if before is None:
            return self._delete("drift", "1", "ts, id", (), limit)
        return self._delete("drift", "ts < ?", "ts, id", (float(before),), limit)

    def prune_audit_before(self, before: float | None = None, limit: int = BATCH) -> int:
        """Delete up to ``limit`` audit rows written before wall time ``before`` (None: the oldest)."""
        if before is None:
            return self._delete("audit", "1", "id", (), limit)
        return self._delete("audit", "wall_time < ?", "id", (float(before),), limit)

    def incremental_vacuum(self, pages: int = 256) -> int:
        """Give up to ``pages`` free pages back to the file system (incremental auto-vacuum stores
        only; others keep free pages for reuse); how many were given back."""
        with self._write(defer=False) as conn:
            before = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            if before == 0 or int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:
                return 0
            conn.execute(f"PRAGMA incremental_vacuum({max(1, int(pages))})").fetchall()
            after = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        return before - after

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database and truncate it; False when a reader kept
        part of it (it is truncated on a later try)."""
        with self._lock:
            if self.degraded:
                return False
            row = self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return row is not None and int(row[0]) == 0
