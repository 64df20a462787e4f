"""Doctor checks of where the sensor keeps its state: the data directory, the store's integrity,
free disk space, and whether a daemon runs for it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from heimdal_tui.service.doctor import CheckResult, DoctorContext, fail, ok, skip, warn

_MIB = 1024 * 1024
# Disk space: below these the check warns, then fails.
WARN_FREE_BYTES = 256 * _MIB
WARN_FREE_FRACTION = 0.05
FAIL_FREE_BYTES = 32 * _MIB
FAIL_FREE_FRACTION = 0.01
_IN_MEMORY = "the daemon keeps new alerts and changes in memory and saves them once it can write"


def _existing_ancestor(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _mib(n: float) -> str:
    return f"{n / _MIB:.1f} MiB"


def check_data_directory(ctx: DoctorContext) -> CheckResult:
    name = "data directory"
    path = ctx.data_dir
    if path.exists() and not path.is_dir():
        return fail(name, f"{path} is not a directory")
    if not path.exists():
        parent = _existing_ancestor(path)
        if read_only_fs(parent):
            return fail(name, f"{path} does not exist and {parent} is on a read-only file system")
        if not os.access(parent, os.W_OK | os.X_OK):
            return fail(name, f"{path} does not exist and {parent} is not writable by uid {os.geteuid()}")
        return ok(name, f"{path} does not exist yet (created at first start)")
    if read_only_fs(path):
        return fail(name, f"{path} is on a read-only file system: {_IN_MEMORY}")
    if not os.access(path, os.W_OK | os.X_OK):
        owner = path.stat().st_uid
        return fail(name, f"{path} is not writable by uid {os.geteuid()} (owned by uid {owner})")
    mode = path.stat().st_mode & 0o777
    if mode & 0o007:
        return warn(name, f"{path} is writable, but others may read it (mode {mode:o}): chmod o-rwx {path}")
    return ok(name, f"{path} is writable (mode {mode:o})")


def check_store(ctx: DoctorContext) -> CheckResult:
    """Opens the store read-only: never migrates, repairs or moves it (the daemon does that)."""
    from heimdal_tui.store import SCHEMA_VERSION
    from heimdal_tui.store.base import is_environmental
    from heimdal_tui.store.migrations import current_version

    name = "store"
    path = ctx.store_path
    if not path.exists():
        return skip(name, f"no store yet at {path} (created at first start)")
    kind = "integrity_check" if ctx.full_integrity else "quick_check"
    try:
        with open(path, "rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        return fail(name, f"cannot read {path}: {exc.strerror or exc}")
    if magic != b"SQLite format 3\x00":
        return fail(
            name,
            f"{path} is not a SQLite database: the daemon will move it aside and start an empty store "
            "(restore a backup with `heimdal-tui restore`)",
        )
    # On a read-only file system nobody can change the file, and SQLite could not create the -shm
    # file a WAL reader needs: read it as immutable there.
    flag = "immutable=1" if read_only_fs(path) else "mode=ro"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{flag}", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        return fail(name, f"cannot open {path}: {exc}")
    try:
        problems = [str(r[0]) for r in conn.execute(f"PRAGMA {kind}")]
        version = current_version(conn)
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        vacuum = {0: "none", 1: "full", 2: "incremental"}.get(
            int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
        )
    except sqlite3.DatabaseError as exc:
        if is_environmental(exc):
            return fail(name, f"cannot read {path} as uid {os.geteuid()}: {exc} (run doctor as root)")
        return fail(
            name,
            f"{path} is unreadable ({exc}): the daemon will move it aside and start an empty store "
            "(restore a backup with `heimdal-tui restore`)",
        )
    finally:
        conn.close()
    if problems != ["ok"]:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        return fail(
            name,
            f"{path} fails {kind}: {problems[0]}{more}; the daemon will move it aside and start an "
            "empty store (restore a backup with `heimdal-tui restore`)",
        )
    wal = Path(f"{path}-wal")
    on_disk = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    used = (pages - free) * page_size
    facts = f"{kind} ok, schema version {version}, {_mib(used)} used, {_mib(on_disk)} on disk, auto-vacuum {vacuum}"
    if version > SCHEMA_VERSION:
        return fail(
            name,
            f"{path} has schema version {version}, newer than this heimdal-tui understands "
            f"({SCHEMA_VERSION}): upgrade heimdal-tui",
        )
    if version == 0 and pages > 1:
        return warn(name, f"{path} is a SQLite database but not a heimdal store (no schema version)")
    cap = ctx.config.retention.max_store_mb * _MIB
    if used > cap:
        return warn(
            name, f"{facts}; over the {ctx.config.retention.max_store_mb:g} MiB cap (retention prunes it)"
        )
    if version < SCHEMA_VERSION:
        return ok(name, f"{facts} (upgraded to {SCHEMA_VERSION} at the next start)")
    return ok(name, facts)


def check_disk_space(
    ctx: DoctorContext,
    *,
    warn_bytes: int = WARN_FREE_BYTES,
    warn_fraction: float = WARN_FREE_FRACTION,
    fail_bytes: int = FAIL_FREE_BYTES,
    fail_fraction: float = FAIL_FREE_FRACTION,
) -> CheckResult:
    """Free space on the file system holding the store: fails below ``fail_bytes`` or
    ``fail_fraction`` of it, warns below the warn thresholds or when the store's size cap would not
    fit."""
    name = "disk space"
    where = _existing_ancestor(ctx.data_dir)
    try:
        st = os.statvfs(where)
    except OSError as exc:
        return fail(name, f"cannot tell the free space at {where}: {exc.strerror or exc}")
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    fraction = free / total if total else 0.0
    facts = f"{_mib(free)} free of {_mib(total)} ({fraction:.0%}) at {where}"
    if st.f_flag & os.ST_RDONLY:
        return fail(name, f"{where} is on a read-only file system: {_IN_MEMORY}")
    if free < fail_bytes or fraction < fail_fraction:
        full = "the disk is full" if free < 4096 * 16 else "almost no space left"
        return fail(name, f"{facts}: {full}; {_IN_MEMORY}. Free some space (old logs, backups)")
    if free < warn_bytes or fraction < warn_fraction:
        return warn(name, f"{facts}: running low")
    cap = ctx.config.retention.max_store_mb * _MIB
    store = ctx.store_path
    used = store.stat().st_size if store.exists() else 0
    if cap - used > free:
        return warn(
            name,
            f"{facts}: the store may grow to its {ctx.config.retention.max_store_mb:g} MiB cap, more "
            "than is free; lower [retention] max_store_mb",
        )
    return ok(name, facts)


def check_daemon(ctx: DoctorContext) -> CheckResult:
    from heimdal_tui.service.lock import DaemonLockError, running_daemon, socket_path

    name = "daemon"
    try:
        info = running_daemon(ctx.data_dir)
    except DaemonLockError as exc:
        return warn(name, f"{exc} (run doctor as root or as the heimdal user)")
    sock = socket_path(ctx.data_dir)
    if info is None:
        stale = f"; a stale socket {sock} is left (removed at the next start)" if sock.exists() else ""
        return ok(name, f"not running for {ctx.data_dir}{stale}")
    if info.pid > 0 and not Path(f"/proc/{info.pid}").exists():
        return ok(name, f"running ({info.describe()}, in another PID namespace), socket {sock}")
    if not sock.exists():
        return ok(name, f"running ({info.describe()}), socket {sock} (its console socket is not there yet)")
    return _ask_daemon(name, info.describe(), sock)


def _ask_daemon(name: str, described: str, sock: Path) -> CheckResult:
    """What the running daemon says of itself: whether it captures, and whether its store writes
    (a full or read-only disk only shows in the daemon's memory, not in the files)."""
    from heimdal_tui.daemon.remote import AttachFailed, RemoteSensor
    from heimdal_tui.sensor.link import CommandError

    try:
        link = RemoteSensor(sock, timeout=2.0)
    except AttachFailed as exc:
        return warn(name, f"running ({described}) but {exc}")
    try:
        state = link.call("info")
    except CommandError as exc:
        return warn(name, f"running ({described}) but it did not answer: {exc}")
    finally:
        link.close()
    if state.get("state") == "failed":
        return fail(name, f"running ({described}) but capture failed: {state.get('error')}")
    if state.get("store_degraded"):
        return warn(name, f"running ({described}); its store is {state.get('store')}")
    return ok(name, f"running ({described}), {state.get('source')}, socket {sock}")
