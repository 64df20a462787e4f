"""Real small file systems for tests of full and read-only storage: a tmpfs of a few hundred KiB
that a filler file fills, remounted read-only and back, and an ext4 image on a loop device that the
kernel turns read-only the way an SD card's file system does on an I/O error.

They need root (mount, losetup); where mounting is not permitted the test is skipped with the
reason. Everything is unmounted afterwards, even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _skip_unless_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (mount)")
    if shutil.which("mount") is None:
        pytest.skip(f"{what} needs mount(8)")


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. "1m") mounted on ``where``; skips the test when mounting fails."""
    _skip_unless_root("a tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        _run("umount", "-l", str(where))


def remount(where: Path, mode: str) -> None:
    """``mount -o remount,ro`` (or rw); the kernel refuses ro while files are open for writing."""
    done = _run("mount", "-o", f"remount,{mode}", str(where))
    if done.returncode != 0:
        raise OSError(f"remount,{mode} {where} failed: {done.stderr.strip()}")


def fill(directory: Path) -> Path:
    """Write a filler file until the file system is full; the filler, to delete later."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as fh:
        block = b"\0" * 4096
        try:
            while True:
                fh.write(block)
        except OSError:
            pass
    return filler


@contextlib.contextmanager
def ext4_image(work: Path, size_mb: int = 8) -> Iterator[Path]:
    """An ext4 file system on a loop device, mounted with errors=remount-ro on ``work/mnt``."""
    _skip_unless_root("an ext4 loop mount")
    for tool in ("mkfs.ext4", "losetup"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    image = work / "ext4.img"
    with open(image, "wb") as fh:
        fh.truncate(size_mb * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mnt = work / "mnt"
    mnt.mkdir()
    done = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(mnt))
    if done.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        _run("umount", "-l", str(mnt))


def ext4_device(mnt: Path) -> str:
    """The block device name (loopN) behind a mount, as /sys/fs/ext4 names it."""
    source = _run("findmnt", "-n", "-o", "SOURCE", str(mnt)).stdout.strip()
    return os.path.basename(source)


def trigger_ext4_error(mnt: Path) -> None:
    """Make the kernel treat the file system as failing: with errors=remount-ro it turns read-only
    at once, open files and all (what an SD card's I/O error does)."""
    knob = Path("/sys/fs/ext4") / ext4_device(mnt) / "trigger_fs_error"
    if not knob.exists():
        pytest.skip(f"this kernel has no {knob}")
    knob.write_text("heimdal test: simulated I/O error\n")


def mount_options(mnt: Path) -> str:
    return _run("findmnt", "-n", "-o", "OPTIONS", str(mnt)).stdout.strip()
