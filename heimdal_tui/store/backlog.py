"""Writes the disk could not take, kept in memory until it can.

Every write transaction runs through a :class:`RecordingConnection`, which executes each statement
and remembers it. When the commit fails for an environmental reason (disk full, read-only or failing
storage) the remembered statements become a :class:`PendingWrite` in the :class:`WriteBacklog`, to
be replayed, in order, once the disk takes writes again.

The backlog is bounded (writes and bytes). Repeated upserts of the same rows, which is what the
detection engine does to an alert as it grows, replace each other instead of piling up; past the
bounds the oldest writes are dropped and counted.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# SQLite's primary result codes for failures of the storage itself: waiting will not help the write
# in progress, but space or a writable mount may come back. (A busy or locked database is not one:
# that write waits for busy_timeout and then fails as it always did.)
STORAGE_CODES = frozenset(
    {
        3,  # SQLITE_PERM
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
    }
)


def is_storage_failure(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        text = str(exc).lower()
        return any(w in text for w in ("readonly", "read-only", "disk i/o", "full", "unable to open"))
    return (int(code) & 0xFF) in STORAGE_CODES


MAX_PENDING_WRITES = 20_000
MAX_PENDING_BYTES = 32 * 1024 * 1024
# How far back an upsert looks for an earlier one of the same rows to replace.
_COALESCE_LOOKBACK = 4_096

# "INSERT INTO t (c0, ...) ... ON CONFLICT (c0) DO UPDATE SET a = excluded.a, ...": a row keyed by
# the first parameter, and replaced by each write (a later one leaves nothing of an earlier one).
_KEYED_UPSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(\w+)\s*\(\s*(\w+).*\bON\s+CONFLICT\s*\(\s*(\w+)\s*\)"
    r"\s*DO\s+UPDATE\s+SET\s+(.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_FROM_EXCLUDED = re.compile(r"\s*(\w+)\s*=\s*excluded\.(\w+)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: Any  # a parameter sequence or mapping; for ``many``, a list of them
    many: bool = False


def _params_size(params: Any) -> int:
    if isinstance(params, str | bytes):
        return len(params) + 16
    if isinstance(params, dict):
        return sum(_params_size(v) for v in params.values()) + 16
    if isinstance(params, list | tuple):
        return sum(_params_size(v) for v in params) + 16
    return 16


def _upsert_keys(statement: Statement) -> list[tuple[str, str, Any]] | None:
    """``(sql, table, key)`` for each row a keyed upsert writes, or None for any other statement."""
    match = _KEYED_UPSERT.match(statement.sql)
    if match is None or match.group(2).lower() != match.group(3).lower():
        return None
    # Only plain replacements: "value = value + excluded.value" (a counter) accumulates, and a
    # WHERE makes the update conditional; neither may be folded into a later write.
    for assignment in match.group(4).split(","):
        plain = _FROM_EXCLUDED.fullmatch(assignment)
        if plain is None or plain.group(1).lower() != plain.group(2).lower():
            return None
    rows = statement.params if statement.many else [statement.params]
    keys = []
    for row in rows:
        if not isinstance(row, Sequence) or isinstance(row, str | bytes) or not row:
            return None
        keys.append((statement.sql, match.group(1).lower(), row[0]))
    return keys


@dataclass(slots=True)
class PendingWrite:
    """One transaction's statements, replayed together."""

    statements: list[Statement]
    size: int = 0
    # The rows this write upserts when it does nothing else (None: it does something else).
    upserts: frozenset[tuple[str, str, Any]] | None = None
    rows: frozenset[tuple[str, Any]] = field(default_factory=frozenset)

    @classmethod
    def of(cls, statements: Iterable[Statement]) -> PendingWrite:
        kept = list(statements)
        size = sum(len(s.sql) + _params_size(s.params) for s in kept)
        keys: list[tuple[str, str, Any]] = []
        for statement in kept:
            found = _upsert_keys(statement)
            if found is None:
                return cls(kept, size)
            keys.extend(found)
        try:
            upserts = frozenset(keys)
        except TypeError:  # an unhashable key: never coalesced
            return cls(kept, size)
        return cls(kept, size, upserts, frozenset((table, key) for _, table, key in keys))


class WriteBacklog:
    """Pending writes in the order they were made."""

    def __init__(self, max_writes: int = MAX_PENDING_WRITES, max_bytes: int = MAX_PENDING_BYTES) -> None:
        self.max_writes = max_writes
        self.max_bytes = max_bytes
        self.writes: list[PendingWrite] = []
        self.bytes = 0
        self.dropped = 0  # writes given up because the backlog was full
        self.coalesced = 0  # writes superseded by a later write of the same rows

    def __len__(self) -> int:
        return len(self.writes)

    def append(self, write: PendingWrite) -> int:
        """Keep ``write``; how many of the oldest writes had to be dropped to make room."""
        if not write.statements:
            return 0
        if write.upserts is not None:
            self._drop_superseded(write)
        self.writes.append(write)
        self.bytes += write.size
        dropped = 0
        if len(self.writes) > self.max_writes or self.bytes > self.max_bytes:
            # Drop a tenth at once: making room is then rare, not a cost on every write.
            target_writes = self.max_writes * 9 // 10
            target_bytes = self.max_bytes * 9 // 10
            while self.writes and (len(self.writes) > target_writes or self.bytes > target_bytes):
                oldest = self.writes.pop(0)
                self.bytes -= oldest.size
                dropped += 1
            self.dropped += dropped
        return dropped

    def _drop_superseded(self, write: PendingWrite) -> None:
        """Drop earlier writes that only upserted rows ``write`` upserts again with the same
        statements. Only writes made of upserts of other rows may lie in between: those do not
        depend on the dropped ones, so replaying the rest gives the same rows."""
        assert write.upserts is not None
        index = len(self.writes) - 1
        stop = max(0, len(self.writes) - _COALESCE_LOOKBACK)
        while index >= stop:
            earlier = self.writes[index]
            if earlier.upserts is None:
                break
            if earlier.upserts <= write.upserts:
                del self.writes[index]
                self.bytes -= earlier.size
                self.coalesced += 1
            elif earlier.rows & write.rows:
                break  # the same rows written differently: order matters from here on
            index -= 1

    def clear(self) -> None:
        self.writes.clear()
        self.bytes = 0


class _NoCursor:
    """What a write statement returns when it was only recorded, not executed."""

    rowcount = 0
    lastrowid = None

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Any:
        return iter(())


def is_query(sql: str) -> bool:
    head = sql.lstrip()[:6].upper()
    return head == "SELECT" or head.startswith("WITH")


class RecordingConnection:
    """The connection a write transaction sees: statements run (unless ``execute_writes`` is false,
    when writes are only recorded) and every write is remembered for a replay."""

    def __init__(self, conn: sqlite3.Connection, *, execute_writes: bool = True) -> None:
        self._conn = conn
        self._execute_writes = execute_writes
        self.statements: list[Statement] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        if is_query(sql):
            return self._conn.execute(sql, params)
        return self._run(Statement(sql, params))

    def executemany(self, sql: str, seq_of_params: Iterable[Any]) -> Any:
        return self._run(Statement(sql, list(seq_of_params), many=True))

    def _run(self, statement: Statement) -> Any:
        if not self._execute_writes:
            self.statements.append(statement)
            return _NoCursor()
        try:
            if statement.many:
                cursor = self._conn.executemany(statement.sql, statement.params)
            else:
                cursor = self._conn.execute(statement.sql, statement.params)
        except sqlite3.Error as exc:
            # A statement the storage refused is still a good statement: it is replayed later.
            if is_storage_failure(exc):
                self.statements.append(statement)
            raise
        self.statements.append(statement)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def replay(conn: sqlite3.Connection, write: PendingWrite) -> None:
    for statement in write.statements:
        if statement.many:
            conn.executemany(statement.sql, statement.params)
        else:
            conn.execute(statement.sql, statement.params)
