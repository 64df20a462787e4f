"""The daemon's single-instance lock: one running daemon per data directory.

``<data_dir>/daemon.lock`` carries an exclusive ``flock`` for as long as the daemon runs, and its pid
and start time inside. The kernel drops the lock when the process dies however it dies (SIGKILL,
power loss), so a lock file left behind by a dead daemon is just a file: whether a daemon is running
is decided by whether somebody holds the lock, never by the file's existence or the pid it names
(pids are reused).

The file is never deleted, only rewritten: unlinking it on exit would let a second daemon lock a
fresh file while a third still waits on the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOCK_FILENAME = "daemon.lock"
SOCKET_FILENAME = "daemon.sock"
# Enough for the JSON we write; a bigger file was not written by us.
_MAX_LOCK_BYTES = 4096


class DaemonLockError(Exception):
    """The lock cannot be taken or read (see the message for why)."""


class DaemonAlreadyRunning(DaemonLockError):
    """Another live process holds the lock of this data directory."""

    def __init__(self, message: str, info: DaemonInfo) -> None:
        super().__init__(message)
        self.info = info


@dataclass(frozen=True, slots=True)
class DaemonInfo:
    """The daemon holding a data directory's lock. ``pid`` and ``started`` (wall clock) are what it
    wrote; 0 when it has not written them yet (the instant between locking and writing)."""

    pid: int
    started: float
    socket: Path

    def describe(self) -> str:
        if self.pid <= 0:
            return "a daemon is starting"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid}, running since {since}"


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_FILENAME


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_FILENAME


class DaemonLock:
    """Hold ``<data_dir>/daemon.lock`` exclusively while the daemon runs::

        with DaemonLock(data_dir) as lock:
            ...  # lock.info says what was written

    :meth:`acquire` raises DaemonAlreadyRunning when another process holds it, and DaemonLockError
    when the directory or file cannot be used. The data directory must exist (the store creates it).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = lock_path(self.data_dir)
        self._fd: int | None = None
        self.info: DaemonInfo | None = None
        # Why the pid could not be written into the file (the lock is held all the same).
        self.write_error: str | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DaemonInfo:
        if self._fd is not None:
            raise DaemonLockError(f"{self.path} is already held by this process")
        try:
            # 0644: whoever may see the data directory may learn which pid runs there.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DaemonLockError(f"cannot open the daemon lock {self.path}: {_reason(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_info(fd, self.data_dir)
            os.close(fd)
            raise DaemonAlreadyRunning(
                f"a heimdal daemon already runs for {self.data_dir} ({holder.describe()})", holder
            ) from None
        except OSError as exc:
            os.close(fd)
            raise DaemonLockError(f"cannot lock {self.path}: {_reason(exc)}") from exc
        info = DaemonInfo(pid=os.getpid(), started=time.time(), socket=socket_path(self.data_dir))
        payload = json.dumps({"pid": info.pid, "started": info.started, "socket": str(info.socket)})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (payload + "\n").encode(), 0)
        except OSError as exc:
            # Still ours: a full disk must not stop monitoring; readers see pid 0 ("starting").
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            self.write_error = _reason(exc)
        self._fd = fd
        self.info = info
        return info

    def release(self) -> None:
        fd, self._fd = self._fd, None
        self.info = None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # a stale file then names nobody
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def running_daemon(data_dir: Path) -> DaemonInfo | None:
    """The daemon holding ``data_dir``'s lock, or None when no live process holds it (no lock file,
    or a stale one). DaemonLockError when the file exists but cannot be opened (permissions): then
    nobody can tell from here."""
    path = lock_path(Path(data_dir))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as exc:
        raise DaemonLockError(f"cannot tell whether a daemon runs: {path}: {_reason(exc)}") from exc
    try:
        try:
            # A shared lock is granted only when nobody holds the exclusive one.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_info(fd, Path(data_dir))
        except OSError as exc:
            raise DaemonLockError(f"cannot tell whether a daemon runs: {path}: {_reason(exc)}") from exc
        return None  # closing below releases the shared lock at once
    finally:
        os.close(fd)


def _read_info(fd: int, data_dir: Path) -> DaemonInfo:
    try:
        raw = os.pread(fd, _MAX_LOCK_BYTES, 0)
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (OSError, UnicodeDecodeError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid = data.get("pid")
    started = data.get("started")
    return DaemonInfo(
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else 0,
        started=float(started) if isinstance(started, int | float) and not isinstance(started, bool) else 0.0,
        socket=socket_path(data_dir),
    )


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
