"""What every part of the store shares: the connection, its lock, transactions, JSON columns."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any


class StoreError(Exception):
    """The store cannot be used: its directory is unwritable, it is locked, or it was written by a
    newer heimdal-tui. (Corruption is not an error: the store is moved aside and rebuilt.)"""


class StoreCorrupt(Exception):
    """Internal: the database file cannot be trusted (not a database, failed integrity check, a
    migration failed). :meth:`Store.open` answers it by moving the file aside."""

    def __init__(self, reason: str, conn: sqlite3.Connection | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # Still open: closing it first would let SQLite delete the -wal/-shm files we keep.
        self.conn = conn


# Primary SQLite result codes that say something about the environment (locks, permissions, disk),
# not about the file's contents: these must never get a good store moved aside.
_ENVIRONMENT_CODES = frozenset(
    {
        3,  # SQLITE_PERM
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        9,  # SQLITE_INTERRUPT
        10,  # SQLITE_IOERR
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
        23,  # SQLITE_AUTH
    }
)


def is_environmental(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        text = str(exc).lower()
        return any(w in text for w in ("locked", "unable to open", "readonly", "disk i/o", "full"))
    return (code & 0xFF) in _ENVIRONMENT_CODES


def dumps(value: Any) -> str:
    """A JSON column's text. Values must be JSON-ready: tuples come back as lists, and
    non-string dict keys as strings."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class StoreBase:
    """One SQLite connection shared by every thread, serialised by a lock. Writes run in
    ``BEGIN IMMEDIATE`` transactions so another process's writer waits (busy_timeout) instead of
    failing half-way."""

    path: Path

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self.path = path

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store at {self.path} is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def _row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._connection().execute(sql, params).fetchone()
            return row
