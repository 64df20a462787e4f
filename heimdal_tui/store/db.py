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
from heimdal_tui.store.sync import SyncMixin
from heimdal_tui.store.triage import TriageMixin

DB_FILENAME = "heimdal.db"
# SQLite's companions of a database file, moved aside with it.
_COMPANIONS = ("-wal", "-shm", "-journal")


class Store(AlertsMixin, AuditMixin, TriageMixin, LearnedMixin, SyncMixin, StoreBase):
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
    def open(cls, data_dir: Path, *, busy_timeout: float = 10.0) -> Store:
        """Open (creating or upgrading) the store in ``data_dir``, created with mode 0700.

        StoreError when the directory cannot be created or written, the database is locked past
        ``busy_timeout`` seconds, or it was written by a newer heimdal-tui (it is left untouched).
        A corrupt database is moved aside and a fresh one created (see ``recovered``).
        """
        data_dir = Path(data_dir)
        _ensure_directory(data_dir)
        path = data_dir / DB_FILENAME
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
        return cls(conn, path, recovered)

    @property
    def data_dir(self) -> Path:
        return self.path.parent

    def schema_version(self) -> int:
        with self._lock:
            return migrations.current_version(self._connection())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
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
        raise StoreError(f"cannot write to the data directory {data_dir}: permission denied")


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
