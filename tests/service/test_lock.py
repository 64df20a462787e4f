"""The daemon's single-instance lock with real processes: a holder in another process is seen as
running, a second daemon is refused, a holder killed with SIGKILL leaves a stale file that is not a
running daemon, and the lock is free again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from heimdal_tui.service.lock import (
    DaemonAlreadyRunning,
    DaemonLock,
    DaemonLockError,
    running_daemon,
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from heimdal_tui.service.lock import DaemonLock
    lock = DaemonLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_holder_in_another_process_is_a_running_daemon(tmp_path: Path, holder: subprocess.Popen[str]):
    info = running_daemon(tmp_path)
    assert info is not None and info.pid == holder.pid
    assert info.socket == tmp_path / "daemon.sock"
    assert info.started > 0 and f"pid {holder.pid}" in info.describe()
    with pytest.raises(DaemonAlreadyRunning) as caught:
        DaemonLock(tmp_path).acquire()
    assert caught.value.info.pid == holder.pid
    assert f"already runs for {tmp_path} (pid {holder.pid}" in str(caught.value)


def test_a_killed_holder_leaves_a_stale_file_that_is_not_a_daemon(
    tmp_path: Path, holder: subprocess.Popen[str]
):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock_file = tmp_path / "daemon.lock"
    assert json.loads(lock_file.read_text())["pid"] == holder.pid  # what the dead daemon wrote
    assert running_daemon(tmp_path) is None
    with DaemonLock(tmp_path) as lock:
        assert lock.held and lock.info is not None and lock.info.pid == os.getpid()
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    assert lock_file.exists() and lock_file.read_text() == ""  # released: the file names nobody
    assert running_daemon(tmp_path) is None


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path):
    with DaemonLock(tmp_path):
        info = running_daemon(tmp_path)
        assert info is not None and info.pid == os.getpid()
        with pytest.raises(DaemonAlreadyRunning):
            DaemonLock(tmp_path).acquire()
    assert running_daemon(tmp_path) is None


def test_no_directory_or_no_file_means_no_daemon(tmp_path: Path):
    assert running_daemon(tmp_path / "absent") is None
    assert running_daemon(tmp_path) is None
    with pytest.raises(DaemonLockError, match="cannot open the daemon lock"):
        DaemonLock(tmp_path / "absent").acquire()


def test_a_lock_path_that_is_a_directory_is_an_error(tmp_path: Path):
    (tmp_path / "daemon.lock").mkdir()
    with pytest.raises(DaemonLockError, match="Is a directory"):
        DaemonLock(tmp_path).acquire()


def test_garbage_in_the_lock_file_of_a_live_holder(tmp_path: Path):
    with DaemonLock(tmp_path):
        (tmp_path / "daemon.lock").write_text("not json")
        info = running_daemon(tmp_path)
        assert info is not None and info.pid == 0 and info.describe() == "a daemon is starting"
