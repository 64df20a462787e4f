"""Backing up and restoring the store.

A backup is SQLite's online backup of ``<data_dir>/heimdal.db``: a consistent snapshot taken in one
read transaction, so it can run while the daemon writes (WAL readers do not block writers). The copy
is one self-contained file (rollback journal, no -wal beside it), checked with ``integrity_check``
before it is renamed into place, private (0600: it describes the LAN).

A restore refuses while a daemon holds the data directory's lock, and holds that lock itself so no
daemon starts half-way. The file must be a heimdal store of a schema this code can open (older ones
are upgraded); the store it replaces is kept beside as ``heimdal.db.<time>.bak``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from heimdal_tui.service.lock import DaemonAlreadyRunning, DaemonLock, DaemonLockError, running_daemon
from heimdal_tui.store import DB_FILENAME, SCHEMA_VERSION, Store, StoreError
from heimdal_tui.store.migrations import current_version

SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables every heimdal store has had since schema version 1.
_CORE_TABLES = ("schema_version", "alerts", "audit", "suppressions", "allowlist", "kv")
_COMPANIONS = ("-wal", "-shm", "-journal")


class BackupError(Exception):
    """A backup or restore could not be made (the message names what and why)."""


class RestoreRefused(BackupError):
    """A daemon runs for that data directory."""


@dataclass(frozen=True, slots=True)
class StoreSummary:
    schema_version: int
    alerts: int
    audit: int
    baselines: int
    size: int

    def describe(self) -> str:
        return (
            f"schema version {self.schema_version}, {self.alerts} alerts, {self.audit} audit rows, "
            f"{self.baselines} baselines, {self.size / 1024 / 1024:.1f} MiB"
        )


@dataclass(frozen=True, slots=True)
class RestoreResult:
    summary: StoreSummary
    replaced: Path | None  # where the previous store went
    upgraded_from: int | None  # the schema version restored, when it was upgraded


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _connect_source(path: Path) -> sqlite3.Connection:
    """A connection that only reads ``path``: read-write where allowed (a WAL store needs its -shm
    file), else read-only."""
    try:
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error:
        pass
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0, isolation_level=None
        )
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database ({exc})") from exc


def _check_heimdal_store(conn: sqlite3.Connection, what: str, full: bool = True) -> int:
    """The schema version of a readable, intact heimdal store; BackupError naming what is wrong."""
    try:
        problems = [str(r[0]) for r in conn.execute(f"PRAGMA {'integrity' if full else 'quick'}_check")]
        tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a readable SQLite database: {exc}") from exc
    if problems != ["ok"]:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise BackupError(f"{what} fails SQLite's integrity check: {problems[0]}{more}")
    missing = [t for t in _CORE_TABLES if t not in tables]
    if missing:
        raise BackupError(
            f"{what} is a SQLite database but not a heimdal store (no {', '.join(missing)} table)"
        )
    version = current_version(conn)
    if version < 1:
        raise BackupError(f"{what} is not a heimdal store (no schema version recorded)")
    if version > SCHEMA_VERSION:
        raise BackupError(
            f"{what} has schema version {version}, newer than this heimdal-tui understands "
            f"({SCHEMA_VERSION}): restore it with the heimdal-tui that made it"
        )
    return version


def summarize(conn: sqlite3.Connection, path: Path) -> StoreSummary:
    def count(table: str) -> int:
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.Error:
            return 0

    return StoreSummary(
        schema_version=current_version(conn),
        alerts=count("alerts"),
        audit=count("audit"),
        baselines=count("baselines"),
        size=path.stat().st_size if path.exists() else 0,
    )


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """SQLite's online backup of ``source`` into a new single-file database at ``target``."""
    dest = sqlite3.connect(target, isolation_level=None)
    try:
        # One step: the whole copy is one snapshot, however busy the writer (a stepped backup
        # restarts each time another connection writes).
        source.backup(dest, pages=-1)
        dest.execute("PRAGMA journal_mode = DELETE")
    finally:
        dest.close()
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_destination(dest: Path) -> Path:
    """``dest`` itself, or a time-stamped name inside it when it is a directory."""
    if dest.is_dir():
        return dest / f"heimdal-{time.strftime('%Y%m%dT%H%M%S')}.db"
    return dest


def backup_store(data_dir: Path, dest: Path, *, overwrite: bool = False) -> tuple[Path, StoreSummary]:
    """Copy the store of ``data_dir`` to ``dest`` (a file, or a directory to put one in); the path
    written and what it holds. BackupError when there is no store, the destination exists (unless
    ``overwrite``) or cannot be written, or the copy fails its integrity check (then it is removed)."""
    source_path = Path(data_dir) / DB_FILENAME
    if not source_path.is_file():
        raise BackupError(f"there is no store to back up at {source_path}")
    target = backup_destination(Path(dest))
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists; choose another name or pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: {target.parent} is not a directory")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    source = _connect_source(source_path)
    try:
        _check_heimdal_store(source, f"the store {source_path}", full=False)
        old_umask = os.umask(0o077)
        try:
            _copy(source, partial)
        finally:
            os.umask(old_umask)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot write {target}: {_reason(exc)}") from exc
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source_path} to {target}: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    check = sqlite3.connect(partial)
    try:
        _check_heimdal_store(check, f"the copy {partial}")
        summary = summarize(check, partial)
    except BackupError:
        check.close()
        partial.unlink(missing_ok=True)
        raise
    check.close()
    os.replace(partial, target)
    _fsync_dir(target.parent)
    return target, summary


def _bak_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{stamp}-{n}.bak")
        n += 1
    return candidate


def _set_aside(current: Path) -> Path:
    """Move the store being replaced (and what is left of its companions) to ``.bak``, after
    folding its write-ahead log into it so the .bak is one file."""
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(current, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
    bak = _bak_name(current)
    os.replace(current, bak)
    for suffix in _COMPANIONS:
        companion = Path(f"{current}{suffix}")
        if companion.exists():
            os.replace(companion, Path(f"{bak}{suffix}"))
    return bak


def _match_owner(path: Path, data_dir: Path) -> None:
    """Run as root for a service data directory: the restored file must belong to its owner, or
    the daemon (another user) could not write it."""
    if os.geteuid() != 0:
        return
    owner = data_dir.stat()
    with contextlib.suppress(OSError):
        os.chown(path, owner.st_uid, owner.st_gid)


def restore_store(source_path: Path, data_dir: Path) -> RestoreResult:
    """Replace the store of ``data_dir`` by the backup ``source_path`` (see the module docstring).

    RestoreRefused while a daemon runs there; BackupError when the file is not a heimdal store
    this code can open, or anything fails (the current store is then left as it was)."""
    source_path = Path(source_path)
    data_dir = Path(data_dir)
    if not source_path.is_file():
        raise BackupError(f"there is no backup file at {source_path}")
    try:
        with open(source_path, "rb") as fh:
            magic = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {source_path}: {_reason(exc)}") from exc
    if magic != SQLITE_MAGIC:
        raise BackupError(f"{source_path} is not a SQLite database (so not a heimdal store backup)")
    try:
        info = running_daemon(data_dir)
    except DaemonLockError as exc:
        raise BackupError(str(exc)) from exc
    if info is not None:
        raise RestoreRefused(_refusal(data_dir, info.describe()))
    if not data_dir.is_dir():
        try:
            data_dir.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise BackupError(f"cannot create the data directory {data_dir}: {_reason(exc)}") from exc
    try:
        with DaemonLock(data_dir):
            return _restore_locked(source_path, data_dir)
    except DaemonAlreadyRunning as exc:
        raise RestoreRefused(_refusal(data_dir, exc.info.describe())) from exc
    except DaemonLockError as exc:
        raise BackupError(str(exc)) from exc


def _refusal(data_dir: Path, holder: str) -> str:
    return (
        f"a heimdal daemon is running for {data_dir} ({holder}): stop it first "
        "(sudo systemctl stop heimdal), then restore"
    )


def _put_back(current: Path, replaced: Path | None) -> None:
    for suffix in ("", *_COMPANIONS):
        Path(f"{current}{suffix}").unlink(missing_ok=True)
    if replaced is not None:
        for suffix in ("", *_COMPANIONS):
            moved = Path(f"{replaced}{suffix}")
            if moved.exists():
                os.replace(moved, Path(f"{current}{suffix}"))


def _restore_locked(source_path: Path, data_dir: Path) -> RestoreResult:
    source = _connect_source(source_path)
    try:
        version = _check_heimdal_store(source, str(source_path))
        staged = data_dir / f".{DB_FILENAME}.restore-{os.getpid()}"
        try:
            _copy(source, staged)
        except (OSError, sqlite3.Error) as exc:
            staged.unlink(missing_ok=True)
            reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
            raise BackupError(f"cannot copy {source_path} into {data_dir}: {reason}") from exc
    finally:
        source.close()
    check = sqlite3.connect(staged)
    try:
        _check_heimdal_store(check, f"the copy of {source_path}")
    except BackupError:
        check.close()
        staged.unlink(missing_ok=True)
        raise
    check.close()
    os.chmod(staged, 0o600)
    _match_owner(staged, data_dir)
    current = data_dir / DB_FILENAME
    replaced = _set_aside(current) if current.exists() else None
    os.replace(staged, current)
    _fsync_dir(data_dir)
    try:
        with Store.open(data_dir) as store:  # upgrades an older schema, and proves it opens
            recovered = store.recovered
    except StoreError as exc:
        recovered = str(exc)
    if recovered:
        _put_back(current, replaced)
        kept = "; the previous store is back in place" if replaced else ""
        raise BackupError(f"the restored store would not open: {recovered}{kept}")
    for suffix in ("", *_COMPANIONS):
        companion = Path(f"{current}{suffix}")
        if companion.exists():
            _match_owner(companion, data_dir)
    conn = sqlite3.connect(current)
    try:
        summary = summarize(conn, current)
    finally:
        conn.close()
    return RestoreResult(
        summary=summary,
        replaced=replaced,
        upgraded_from=version if version < SCHEMA_VERSION else None,
    )
