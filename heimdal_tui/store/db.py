"""Opening the store: one SQLite file in WAL mode, checked, migrated, rebuilt when corrupt."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from types import TracebackType

from heimdal_tui.store import migrations
from heimdal_tui.store.alerts import AlertsMixin
from heimdal_tui.store.audit import AuditMixin
from heimdal_tui.store.base import StoreBase, StoreCorrupt, StoreError, is_environmental
from heimdal_tui.store.baselines import LearnedMixin
from heimdal_tui.store.maintenance import MaintenanceMixin
from heimdal_tui.store.sync import SyncMixin
from heimdal_tui.store.triage import TriageMixin

DB_FILENAME = "heimdal.db"
# SQLite's companions of a database file, moved aside with it.
_COMPANIONS = ("-wal", "-shm", "-journal")


class Store(AlertsMixin, AuditMixin, TriageMixin, LearnedMixin, SyncMixin, MaintenanceMixin, StoreBase):
    """Heimdal's persistent state in ``<data_dir>/heimdal.db``.

    Safe to share between threads (one connection behind a lock). Every write is its own
    transaction: a process crash loses at most the write in progress, never a committed one.
    ``recovered`` says, when set, that the file found was unreadable and was replaced by an empty
    store (the old one is kept beside it for inspection).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, recovered: str | None = None) -> None:
        super().__init__(conn, path)
        self.recovered = recovered
        self.journal_mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    @classmethod
    def open(cls, data_dir: Path, *, busy_timeout: float = 10.0, allow_read_only: bool = False) -> Store:
        """Open (creating or upgrading) the store in ``data_dir``, created with mode 0700.

        StoreError when the directory cannot be created or written, the database is locked past
        ``busy_timeout`` seconds, or it was written by a newer heimdal-tui (it is left untouched).
        A corrupt database is moved aside and a fresh one created (see ``recovered``).

        With ``allow_read_only`` (the daemon), an existing store on a read-only file system, or in
        a file this process may not write, opens read-only and degraded: reads work, writes are
        kept in memory and saved once a retry finds the store writable (see ``status()``).
        """
        data_dir = Path(data_dir)
        path = data_dir / DB_FILENAME
        if allow_read_only and path.is_file() and not _writable(data_dir, path):
            return cls._open_read_only(path, busy_timeout)
        _ensure_directory(data_dir)
        if path.exists() and not _writable(data_dir, path):
            raise StoreError(f"cannot write to the store {path}: {_not_writable_reason(path)}")
        try:
            conn = _connect(path, busy_timeout)
            recovered = None
        except StoreCorrupt as exc:
            aside = _set_aside(path, exc)
            recovered = (
                f"the store at {path} was unreadable ({exc.reason}); moved aside to {aside} and rebuilt"
            )
            try:
                conn = _connect(path, busy_timeout)
            except StoreCorrupt as again:
                if again.conn is not None:
                    again.conn.close()
                raise StoreError(f"cannot create a new store at {path}: {again.reason}") from again
        store = cls(conn, path, recovered)
        store._reopen = lambda: _reopen(data_dir, path, busy_timeout)
        return store

    @classmethod
    def _open_read_only(cls, path: Path, busy_timeout: float) -> Store:
        conn = _connect_read_only(path, busy_timeout)
        store = cls(conn, path)
        store._reopen = lambda: _reopen(path.parent, path, busy_timeout)
        store._start_read_only(_not_writable_reason(path))
        return store

    @property
    def data_dir(self) -> Path:
        return self.path.parent

    def schema_version(self) -> int:
        with self._lock:
            return migrations.current_version(self._connection())

    def close(self) -> None:
        """Close the connection; writes still pending (the store degraded) get one last try."""
        with self._lock:
            if self._conn is not None:
                self._flush_before_close()
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _ensure_directory(data_dir: Path) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        raise StoreError(f"cannot use {data_dir} as the data directory: it is not a directory")
    if not data_dir.is_dir():
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(data_dir, 0o700)  # mkdir's mode is filtered through the umask
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {data_dir}: {_reason(exc)}") from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write to the data directory {data_dir}: {_not_writable_reason(data_dir)}")


def _on_read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _not_writable_reason(path: Path) -> str:
    if _on_read_only_fs(path):
        return "it is on a read-only file system"
    try:
        owner = path.stat().st_uid
    except OSError:
        return "permission denied"
    return f"permission denied (owned by uid {owner}, this process runs as uid {os.geteuid()})"


def _writable(data_dir: Path, path: Path) -> bool:
    """Whether this process can write the database and create its -wal/-shm companions."""
    if _on_read_only_fs(data_dir):
        return False
    if not os.access(data_dir, os.W_OK | os.X_OK):
        return False
    return all(
        os.access(candidate, os.W_OK)
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if candidate.exists()
    )


def _reopen(data_dir: Path, path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A fresh read-write connection, for a degraded store retrying; StoreError while the disk
    still refuses."""
    if not _writable(data_dir, path):
        raise StoreError(f"cannot write to the store {path}: {_not_writable_reason(path)}")
    try:
        return _connect(path, busy_timeout)
    except StoreCorrupt as exc:
        if exc.conn is not None:
            exc.conn.close()
        raise StoreError(f"the store at {path} cannot be reopened: {exc.reason}") from exc


def _connect_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A read-only connection to an existing store that must not (cannot) be written."""
    # On a read-only file system nobody can change the file, and without ``immutable`` SQLite
    # would need to create the -shm file it cannot create; elsewhere the file may change under us.
    flag = "immutable=1" if _on_read_only_fs(path) else "mode=ro"
    uri = f"{path.resolve().as_uri()}?{flag}"
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
        version = migrations.current_version(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store at {path}: {exc}") from exc
    if problems != ["ok"]:
        conn.close()
        raise StoreError(f"the read-only store at {path} fails its integrity check: {problems[0]}")
    if version != migrations.SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"the read-only store at {path} has schema version {version} and this heimdal-tui needs "
            f"{migrations.SCHEMA_VERSION}; it cannot be upgraded while it cannot be written"
        )
    return conn


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A checked, migrated connection; StoreCorrupt when the file cannot be trusted."""
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Dirty pages stay in memory until COMMIT: a full or failing disk then fails the commit,
        # never a statement half-way through a write (see StoreBase._write).
        conn.execute("PRAGMA cache_spill = OFF")
        conn.execute("PRAGMA temp_store = MEMORY")
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            more = f" and {len(problems) - 1} more problems" if len(problems) > 1 else ""
            raise StoreCorrupt(f"integrity check failed: {problems[0]}{more}")
        version = migrations.current_version(conn)
        if version > migrations.SCHEMA_VERSION:
            raise StoreError(
                f"the store at {path} has schema version {version}, newer than this heimdal-tui "
                f"understands ({migrations.SCHEMA_VERSION}); it was left untouched: upgrade "
                "heimdal-tui or use another data directory"
            )
        if version == 0 and not _has_tables(conn):
            # Only settable before the first table: lets retention give freed pages back to the
            # file system bit by bit (PRAGMA incremental_vacuum) instead of a full VACUUM.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL loses no committed transaction on a process crash (only, at worst,
        # the last ones on power loss), and spares an fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        migrations.migrate(conn)
    except StoreCorrupt as exc:
        exc.conn = conn
        raise
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        if is_environmental(exc):
            conn.close()
            raise StoreError(f"cannot use the store at {path}: {exc}") from exc
        raise StoreCorrupt(str(exc), conn) from exc
    return conn


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None


def _set_aside(path: Path, corrupt: StoreCorrupt) -> Path:
    """Move the corrupt database aside, then close its connection: closed first, SQLite would
    delete (or checkpoint away) the -wal and -shm files that belong with it. Where open files
    cannot be renamed (Windows), close first and move what remains."""
    conn, corrupt.conn = corrupt.conn, None
    try:
        return _move_aside(path)
    except StoreError:
        if conn is None:
            raise
        conn.close()
        conn = None
        return _move_aside(path)
    finally:
        if conn is not None:
            conn.close()


def _move_aside(path: Path) -> Path:
    """Rename the database and its companions to ``<name>.corrupt-YYYYmmddTHHMMSS[-N]``."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(Path(f"{base}{suffix}").exists() for suffix in ("", *_COMPANIONS)):
        base = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    try:
        for suffix in ("", *_COMPANIONS):
            source = Path(f"{path}{suffix}")
            if source.exists():
                os.replace(source, Path(f"{base}{suffix}"))
    except OSError as exc:
        raise StoreError(
            f"the store at {path} is unreadable and cannot be moved aside: {_reason(exc)}"
        ) from exc
    return base
