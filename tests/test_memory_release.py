"""Handing freed heap memory back to the system (glibc's malloc_trim, a fixed mmap threshold).

The allocator checks run in fresh interpreters: the test process's own heap (and its mmap
threshold) depend on the tests that ran before.
"""

from __future__ import annotations

import ctypes.util
import platform
import subprocess
import sys

import pytest

from heimdal_tui.common.memory import MemoryReleaser

GLIBC = pytest.mark.skipif(
    platform.system() != "Linux" or "musl" in (ctypes.util.find_library("c") or ""), reason="glibc only"
)

_RSS = """
from pathlib import Path
import numpy as np
def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
"""

_TRIMMED = (
    _RSS
    + """
from heimdal_tui.common.memory import release_free_memory
# Blocks under glibc's mmap threshold, each followed by a small block that stays: freeing the
# big ones leaves holes inside the heap that free() does not give back; malloc_trim does.
blocks, keep = [], []
for _ in range(2_000):  # ~128 MB of heap
    blocks.append(np.ones(64_000, dtype=np.uint8))
    keep.append(np.ones(1_024, dtype=np.uint8))
del blocks
freed = rss()
assert release_free_memory() is True
print(freed - rss())
"""
)

_HOLES = (
    _RSS
    + """
import sys
from heimdal_tui.common.memory import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
big = np.ones(8 << 20, dtype=np.uint8)  # freeing a mapped 8 MiB block raises glibc's threshold
del big
blocks, keep = [], []
for _ in range(400):  # 100 MB in 256 KiB blocks, each followed by a small one that stays
    blocks.append(np.ones(256 << 10, dtype=np.uint8))
    keep.append(np.ones(1024, dtype=np.uint8))
before = rss()
del blocks
print(before - rss())
"""
)


def _given_back(code: str, *args: str) -> int:
    """KiB of anonymous memory the snippet reports given back to the system."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return int(out.stdout)


@GLIBC
def test_release_returns_freed_heap_to_the_system() -> None:
    assert _given_back(_TRIMMED) > 90_000


@GLIBC
def test_fixed_threshold_gives_big_blocks_back_when_freed() -> None:
    assert _given_back(_HOLES, "dynamic") < 20_000  # the blocks came from the heap and stay there
    assert _given_back(_HOLES, "fixed") > 90_000  # each block had its own map, unmapped on free


def test_releaser_waits_its_interval() -> None:
    now = [100.0]
    releaser = MemoryReleaser(interval=2.0, clock=lambda: now[0])
    assert releaser.maybe_release() is False  # just made
    now[0] += 1.9
    assert releaser.maybe_release() is False
    now[0] += 0.2
    assert releaser.maybe_release() is True
    assert releaser.maybe_release() is False
    now[0] += 2.0
    assert releaser.maybe_release() is True


_SENSOR_ENV = """
import os, sys
for name in ("POLARS_MAX_THREADS", "_RJEM_MALLOC_CONF"):
    os.environ.pop(name, None)
from heimdal_tui.cli.main import main
try:
    main([sys.argv[1], "--help"])
except SystemExit:
    pass
import polars  # polars puts its own defaults in front of what it finds
print(os.environ.get("POLARS_MAX_THREADS"), os.environ.get("_RJEM_MALLOC_CONF"))
"""


def test_the_sensor_runs_polars_with_one_thread_and_its_allocator_handing_pages_back_at_once():
    def env_of(command: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", _SENSOR_ENV, command], capture_output=True, text=True, check=True
        )
        return out.stdout.split()[-2:]

    threads, conf = env_of("daemon")
    assert threads == "1"
    # jemalloc takes the last value of an option: ours, after polars' own defaults.
    assert conf.split(",")[-2:] == ["dirty_decay_ms:0", "muzzy_decay_ms:0"]
    threads, conf = env_of("analyze")  # analyze keeps polars' pool and allocator defaults
    assert threads == "None" and "dirty_decay_ms:0" not in conf
