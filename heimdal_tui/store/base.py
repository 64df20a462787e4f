"""What every part of the store shares: the connection, its lock, transactions, JSON columns, and
what happens when the disk stops taking writes.

A write that fails because of the storage (disk full, read-only or failing file system) does not
raise into the caller: the store turns *degraded*, keeps that write and the ones after it in memory
(see :mod:`.backlog`) and retries on a timer; when a retry commits, the store is writable again.
While degraded, the connection holds the pending writes in one open transaction that is never
spilled to disk (``cache_spill`` is off), so reads see them as if they were stored; where even that
is impossible (a read-only database) writes are only recorded, and reads see what the disk holds.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from heimdal_tui.store.backlog import (
    PendingWrite,
    RecordingConnection,
    WriteBacklog,
    is_storage_failure,
    replay,
)

log = logging.getLogger("heimdal_tui.store")


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


_READONLY = 8


class StoreDegraded(StoreError):
    """The store cannot write at the moment (see :meth:`StoreBase.status`); raised only by
    maintenance (pruning, vacuum), which waits until writes resume instead of queueing."""


def describe_failure(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Whether the store writes to disk. ``degraded`` with a ``reason`` (SQLite's words) since
    ``since`` (wall clock); ``pending`` writes are held in memory; ``dropped`` ones were given up
    because that memory was full, ``lost`` ones were cut short by the failure itself. ``in_memory``
    says reads see the pending writes (False: reads see only what the disk holds)."""

    degraded: bool
    reason: str | None = None
    since: float | None = None
    pending: int = 0
    dropped: int = 0
    lost: int = 0
    failed_replays: int = 0
    in_memory: bool = True
    last_retry: float | None = None

    def describe(self) -> str:
        if not self.degraded:
            return "writing to disk"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since or 0))
        text = f"not writing to disk since {since}: {self.reason}; {self.pending} writes kept in memory"
        if self.dropped:
            text += f", {self.dropped} dropped (memory full)"
        if self.lost:
            text += f", {self.lost} lost"
        return text + " (retrying)"


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
    failing half-way; a write the storage refuses makes the store degraded (module docstring)."""

    path: Path
    # Seconds between retries while degraded: the first, then doubling up to the last.
    retry_first = 5.0
    retry_max = 60.0

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self.path = path
        self._backlog = WriteBacklog()
        self._degraded_reason: str | None = None
        self._degraded_since: float | None = None
        self._degraded_code = 0
        self._lost = 0
        self._failed_replays = 0
        self._last_retry: float | None = None
        # True while the connection holds the backlog in an open transaction (degraded only).
        self._held = False
        self._hold_blocked = False
        self._retry_delay = self.retry_first
        self._retry_wakeup = threading.Event()
        self._retry_thread: threading.Thread | None = None
        # How to open a fresh connection (set by Store.open), and whether the current one can
        # never write (opened read-only): then a retry first reopens.
        self._reopen: Callable[[], sqlite3.Connection] | None = None
        self._needs_reopen = False

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store at {self.path} is closed")
        return self._conn

    # -- state -----------------------------------------------------------------------------------
    @property
    def degraded(self) -> bool:
        return self._degraded_reason is not None

    def status(self) -> StoreStatus:
        with self._lock:
            if self._degraded_reason is None:
                return StoreStatus(
                    degraded=False,
                    dropped=self._backlog.dropped,
                    lost=self._lost,
                    failed_replays=self._failed_replays,
                    last_retry=self._last_retry,
                )
            return StoreStatus(
                degraded=True,
                reason=self._degraded_reason,
                since=self._degraded_since,
                pending=len(self._backlog),
                dropped=self._backlog.dropped,
                lost=self._lost,
                failed_replays=self._failed_replays,
                in_memory=self._held,
                last_retry=self._last_retry,
            )

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def _write(self, *, defer: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction. With ``defer`` (every write but maintenance) a storage failure
        keeps the write in memory instead of raising; maintenance raises StoreDegraded while the
        store is degraded, and the failure itself when it hits one."""
        with self._lock:
            conn = self._connection()
            if self._degraded_reason is not None:
                if not defer:
                    raise StoreDegraded(f"the store at {self.path} is {self.status().describe()}")
                with self._deferred(conn) as deferred:
                    yield deferred
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                if not (defer and is_storage_failure(exc)):
                    raise
                self._become_degraded(exc)
                with self._deferred(conn) as deferred:
                    yield deferred
                return
            recorder = RecordingConnection(conn)
            committing = False
            try:
                try:
                    # The recorder stands in for the connection (it forwards everything else).
                    yield cast(sqlite3.Connection, recorder)
                    committing = True
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                if not (defer and is_storage_failure(exc)):
                    raise
                if not committing:
                    self._count_cut_short(exc, recorder)
                self._become_degraded(exc)
                self._keep(PendingWrite.of(recorder.statements))
                if self._degraded_code != _READONLY:
                    self._hold(conn)  # later reads see this write as if it were stored

    def _count_cut_short(self, exc: BaseException, recorder: RecordingConnection) -> None:
        """A statement, not the commit, failed: what the write would have done after it is gone."""
        self._lost += 1
        log.error(
            "a write to %s failed part-way (%s); its first %d statements are kept in memory",
            self.path,
            describe_failure(exc) if isinstance(exc, sqlite3.Error) else exc,
            len(recorder.statements),
        )

    @contextmanager
    def _deferred(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """A write while degraded: applied in the open transaction holding the backlog (so later
        reads see it), or only recorded when that cannot be."""
        if not self._held and self._degraded_code != _READONLY:
            self._hold(conn)
        if not self._held:
            recorder = RecordingConnection(conn, execute_writes=False)
            yield cast(sqlite3.Connection, recorder)
            self._keep(PendingWrite.of(recorder.statements))
            return
        recorder = RecordingConnection(conn)
        conn.execute("SAVEPOINT heimdal_write")
        try:
            yield cast(sqlite3.Connection, recorder)
            conn.execute("RELEASE heimdal_write")
        except BaseException as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK TO heimdal_write")
                    conn.execute("RELEASE heimdal_write")
            if not is_storage_failure(exc):
                raise
            # Even memory would not take it (e.g. a read-only database): record from now on.
            self._count_cut_short(exc, recorder)
            self._degraded_code = _error_code(exc)
            self._release_hold(conn)
        self._keep(PendingWrite.of(recorder.statements))

    def _hold(self, conn: sqlite3.Connection) -> None:
        """Open the transaction that holds the backlog in memory, replaying it there. After a
        failure it is not tried again before the next retry (each try replays everything)."""
        if self._hold_blocked:
            return
        try:
            with _without_waiting(conn):
                conn.execute("BEGIN IMMEDIATE")
            self._replay_backlog(conn)
            self._held = True
        except sqlite3.Error as exc:
            self._release_hold(conn)
            self._hold_blocked = True
            if is_storage_failure(exc):
                self._degraded_code = _error_code(exc)
            else:
                log.warning("cannot hold the pending writes to %s in memory: %s", self.path, exc)

    def _release_hold(self, conn: sqlite3.Connection) -> None:
        self._held = False
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _replay_backlog(self, conn: sqlite3.Connection) -> None:
        """Apply every pending write inside the caller's transaction. A write that now fails for a
        reason of its own (a constraint) is skipped and counted; a storage failure propagates."""
        for write in list(self._backlog.writes):
            conn.execute("SAVEPOINT heimdal_replay")
            try:
                replay(conn, write)
                conn.execute("RELEASE heimdal_replay")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK TO heimdal_replay")
                    conn.execute("RELEASE heimdal_replay")
                if is_storage_failure(exc):
                    raise
                self._failed_replays += 1
                self._backlog.writes.remove(write)
                self._backlog.bytes -= write.size
                log.error("a pending write to %s could not be replayed and is dropped: %s", self.path, exc)

    def _keep(self, write: PendingWrite) -> None:
        dropped = self._backlog.append(write)
        if dropped:
            log.error(
                "%d pending writes to %s dropped: the in-memory backlog is full (%d writes kept)",
                dropped,
                self.path,
                len(self._backlog),
            )
            if self._held:
                # The open transaction still holds what was dropped: rebuild it from what is kept.
                conn = self._connection()
                self._release_hold(conn)
                self._hold(conn)

    def _become_degraded(self, exc: sqlite3.Error) -> None:
        self._degraded_reason = describe_failure(exc)
        self._degraded_since = time.time()
        self._degraded_code = _error_code(exc)
        self._retry_delay = self.retry_first
        log.warning(
            "the store at %s cannot write (%s): keeping writes in memory and retrying every %gs",
            self.path,
            self._degraded_reason,
            self.retry_first,
        )
        self._start_retry_thread()

    def _start_read_only(self, reason: str) -> None:
        """Opened read-only (see Store.open's ``allow_read_only``): degraded from the start."""
        self._degraded_reason = f"the store cannot be written: {reason}"
        self._degraded_since = time.time()
        self._degraded_code = _READONLY
        self._needs_reopen = True
        log.warning("the store at %s is read-only (%s): keeping writes in memory", self.path, reason)
        self._start_retry_thread()

    # -- retrying --------------------------------------------------------------------------------
    def retry_pending(self) -> bool:
        """Try now to write what is pending; True when the store is (again) writing to disk."""
        with self._lock:
            if self._degraded_reason is None:
                return True
            conn = self._connection()
            self._last_retry = time.time()
            self._hold_blocked = False
            try:
                if self._reopen is not None and (self._needs_reopen or self._degraded_code == _READONLY):
                    # A read-only connection stays read-only: only a new one can see a remount.
                    conn = self._swap_connection(self._reopen())
                if not self._held:
                    with _without_waiting(conn):
                        conn.execute("BEGIN IMMEDIATE")
                    self._replay_backlog(conn)
                conn.execute("COMMIT")
            except (sqlite3.Error, StoreError) as exc:
                self._held = False
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and is_storage_failure(exc):
                    self._degraded_reason = describe_failure(exc)
                    self._degraded_code = _error_code(exc)
                if self._degraded_code != _READONLY and not self._needs_reopen:
                    self._hold(conn)  # reads go on seeing the pending writes
                self._retry_delay = min(self._retry_delay * 2, self.retry_max)
                return False
            saved = len(self._backlog)
            since = self._degraded_since
            self._backlog.clear()
            self._held = False
            self._degraded_reason = None
            self._degraded_since = None
            self._degraded_code = 0
            log.warning(
                "the store at %s is writing again: %d pending writes saved (%.0fs without disk)",
                self.path,
                saved,
                time.time() - (since or time.time()),
            )
            return True

    def _swap_connection(self, fresh: sqlite3.Connection) -> sqlite3.Connection:
        old, self._conn = self._conn, fresh
        self._needs_reopen = False
        self._held = False
        self._degraded_code = 0
        if old is not None:
            with suppress(sqlite3.Error):
                if old.in_transaction:
                    old.execute("ROLLBACK")
                old.close()
        return fresh

    def _start_retry_thread(self) -> None:
        if self._retry_thread is not None and self._retry_thread.is_alive():
            return
        self._retry_wakeup.clear()
        self._retry_thread = threading.Thread(
            target=self._retry_loop, name="heimdal-store-retry", daemon=True
        )
        self._retry_thread.start()

    def _retry_loop(self) -> None:
        while not self._retry_wakeup.wait(self._retry_delay):
            if self._conn is None:
                return
            try:
                if self.retry_pending():
                    return
            except StoreError:  # closed meanwhile
                return
            except Exception:  # never let the retry thread die silently with writes pending
                log.exception("retrying the pending writes to %s failed", self.path)

    def _flush_before_close(self) -> None:
        """Called with the lock held, before closing: one last try, then say what is lost."""
        self._retry_wakeup.set()
        if self._degraded_reason is None or self.retry_pending():
            return
        pending = len(self._backlog)
        if pending:
            log.error(
                "closing the store at %s with %d writes it could not save (%s)",
                self.path,
                pending,
                self._degraded_reason,
            )
        conn = self._conn
        if conn is not None and conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        self._held = False

    # -- reading ---------------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def _row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._connection().execute(sql, params).fetchone()
            return row


@contextmanager
def _without_waiting(conn: sqlite3.Connection) -> Iterator[None]:
    """No busy_timeout for what follows: the store's lock is held (the engine may be waiting on
    it), so another process's writer must make this fail at once, not in ten seconds."""
    busy = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        with suppress(sqlite3.Error):
            conn.execute(f"PRAGMA busy_timeout = {busy}")


def _error_code(exc: BaseException) -> int:
    code = getattr(exc, "sqlite_errorcode", None)
    return int(code) & 0xFF if isinstance(code, int) else 0
