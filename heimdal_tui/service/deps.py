"""Do the compiled dependencies work on this CPU? Each is imported and exercised in a child process,
because a wheel built for another CPU does not raise ImportError: it kills the interpreter (SIGILL
for an instruction this processor lacks, SIGABRT from jemalloc built for smaller memory pages).

What the Raspberry Pis need (from polars' release workflow and the issues of projects that broke):

- Pi 4 (Cortex-A72, ARMv8.0): no LSE atomics (``atomics`` in /proc/cpuinfo), no AES/SHA
  extensions. Builds that assume ARMv8.1 die with SIGILL. The official numpy and polars aarch64
  wheels target baseline ARMv8-A (polars sets CPU features only for x86-64), so they work.
- Pi 5 (Cortex-A76): Raspberry Pi OS boots a 16 KiB-page kernel. jemalloc built for 4 KiB pages
  aborts with "<jemalloc>: Unsupported system page size". polars' aarch64 Linux wheels are built
  with JEMALLOC_SYS_WITH_LG_PAGE=16 (pages up to 64 KiB); older builds may not be: upgrading, or
  booting the 4 KiB kernel (``kernel=kernel8.img`` in /boot/firmware/config.txt), fixes it.
- x86-64 without AVX2/FMA/BMI (older Atom/Celeron boxes): polars' default runtime needs them; the
  compat runtime (``polars[rtcompat]``, polars >= 1.34; ``polars-lts-cpu`` up to 1.33) does not.
  On aarch64 the compat runtime is built like the default one and lags behind it (its last aarch64
  wheel is 1.36.1), so it is never the answer there.

``python -m heimdal_tui.service.deps`` prints one line per dependency and exits 1 when one failed;
``--recommend`` prints the pip requirements this CPU needs on top (the installer uses it). This
module imports nothing that could itself crash.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heimdal_tui.service.doctor import CheckResult, DoctorContext

# (what, code that imports and exercises it, printing its version). Python itself links sqlite3.
COMPILED: tuple[tuple[str, str], ...] = (
    (
        "numpy",
        "import numpy as n; a = n.arange(4096, dtype=n.uint16); assert int(a.sum()) > 0; print(n.__version__)",
    ),
    (
        "polars",
        "import polars as p; d = p.DataFrame({'k': [1, 2, 1], 'v': [1.0, 2.0, 3.0]});"
        " assert d.group_by('k').agg(p.col('v').sum()).height == 2; print(p.__version__)",
    ),
    (
        "iptocc",
        "import iptocc; iptocc.country_code('8.8.8.8'); import importlib.metadata as m; print(m.version('iptocc'))",
    ),
    (
        "scapy+libpcap",
        "from scapy.arch.common import compile_filter; compile_filter('tcp port 80', linktype=1);"
        " import scapy; print(scapy.VERSION)",
    ),
    (
        "sqlite3",
        "import sqlite3; c = sqlite3.connect(':memory:');"
        " c.execute('select row_number() over () from (select 1)').fetchall(); print(sqlite3.sqlite_version)",
    ),
)
OPTIONAL: tuple[tuple[str, str], ...] = (
    (
        "maxminddb",
        "import maxminddb, maxminddb.extension; import importlib.metadata as m; print(m.version('maxminddb'))",
    ),
)
TIMEOUT = 120.0

# polars' non-compat x86-64 build needs these (its release workflow), by /proc/cpuinfo flag name.
POLARS_X86_FEATURES = {
    "sse3": "pni",
    "ssse3": "ssse3",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "popcnt": "popcnt",
    "cmpxchg16b": "cx16",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "bmi1": "bmi1",
    "bmi2": "bmi2",
    "lzcnt": "abm",
    "pclmulqdq": "pclmulqdq",
    "movbe": "movbe",
}
# ARM CPU parts (/proc/cpuinfo "CPU part") of the Raspberry Pis' cores.
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76"}


@dataclass(frozen=True, slots=True)
class Platform:
    machine: str
    page_size: int
    features: frozenset[str]
    cpu: str
    model: str

    def describe(self) -> str:
        parts = [self.model or self.machine, self.cpu, f"{self.page_size // 1024} KiB pages"]
        if self.machine in ("aarch64", "arm64"):
            parts.append("LSE atomics" if "atomics" in self.features else "no LSE atomics")
            parts.append("AES/SHA" if {"aes", "sha2"} <= self.features else "no AES/SHA extensions")
        return ", ".join(p for p in parts if p)


def read_platform(
    cpuinfo: str | None = None,
    model: str | None = None,
    page_size: int | None = None,
    machine: str | None = None,
) -> Platform:
    """This machine (or one described by the /proc/cpuinfo text, device-tree model, page size and
    machine given)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    if model is None:
        try:
            model = Path("/proc/device-tree/model").read_text(errors="replace").strip("\0\n ")
        except OSError:
            model = ""
    features: set[str] = set()
    cpu = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not features:
            features = set(value.split())
        elif key == "cpu part" and not cpu:
            cpu = ARM_PARTS.get(value.strip().lower(), f"ARM part {value.strip()}")
        elif key == "model name" and not cpu:
            cpu = value.strip()
        elif key == "model" and not model and not value.strip().isdigit():
            model = value.strip()
    return Platform(
        machine=machine if machine is not None else platform.machine(),
        page_size=page_size if page_size is not None else os.sysconf("SC_PAGE_SIZE"),
        features=frozenset(features),
        cpu=cpu,
        model=model,
    )


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def polars_requirement(plat: Platform, polars_version: str | None) -> str | None:
    """The extra pip requirement polars needs on this CPU, or None (the default wheel fits)."""
    if polars_version is None or plat.machine not in ("x86_64", "AMD64", "amd64"):
        return None
    missing = [name for name, flag in POLARS_X86_FEATURES.items() if flag not in plat.features]
    if not missing:
        return None
    if _version_tuple(polars_version) >= (1, 34):
        return f"polars[rtcompat]=={polars_version}"
    return f"polars-lts-cpu=={polars_version}"


def missing_x86_features(plat: Platform) -> list[str]:
    return [name for name, flag in POLARS_X86_FEATURES.items() if flag not in plat.features]


def recommendations(plat: Platform | None = None) -> list[str]:
    plat = plat or read_platform()
    wanted = polars_requirement(plat, _installed_version("polars"))
    return [wanted] if wanted else []


@dataclass(frozen=True, slots=True)
class DependencyResult:
    name: str
    ok: bool
    detail: str
    hint: str = ""

    def line(self) -> str:
        text = f"{'ok' if self.ok else 'FAIL':<4}  {self.name}: {self.detail}"
        return f"{text} ({self.hint})" if self.hint else text


def _hint(plat: Platform, rc: int, stderr: str) -> str:
    if "Unsupported system page size" in stderr:
        return (
            f"built with jemalloc for smaller memory pages than this kernel's {plat.page_size // 1024} KiB: "
            "upgrade the package (polars' aarch64 wheels support pages up to 64 KiB) or boot the 4 KiB "
            "kernel (kernel=kernel8.img in /boot/firmware/config.txt)"
        )
    if rc == -signal.SIGILL:
        if plat.machine in ("aarch64", "arm64") and "atomics" not in plat.features:
            return (
                "this build uses instructions this CPU lacks, likely ARMv8.1 LSE atomics (the Pi 4's "
                "Cortex-A72 is ARMv8.0): install the official manylinux wheel from PyPI"
            )
        missing = missing_x86_features(plat)
        if missing:
            return f"this build needs CPU features this processor lacks ({', '.join(missing)})"
        return "this build uses instructions this CPU lacks"
    return ""


def check_one(
    name: str, code: str, python: str = sys.executable, plat: Platform | None = None
) -> DependencyResult:
    plat = plat or read_platform()
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return DependencyResult(name, False, f"import took more than {TIMEOUT:g}s")
    except OSError as exc:
        return DependencyResult(name, False, f"cannot run {python}: {exc.strerror or exc}")
    if done.returncode == 0:
        return DependencyResult(
            name, True, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "imports"
        )
    stderr = done.stderr.strip()
    if done.returncode < 0:
        try:
            what = signal.Signals(-done.returncode).name
        except ValueError:
            what = f"signal {-done.returncode}"
        last = stderr.splitlines()[-1] if stderr else ""
        detail = f"the interpreter died ({what})" + (f": {last}" if last else "")
    else:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {done.returncode}"
    return DependencyResult(name, False, detail[:400], _hint(plat, done.returncode, stderr))


@dataclass(slots=True)
class DependencyReport:
    platform: Platform
    results: list[DependencyResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[DependencyResult]:
        return [r for r in self.results if not r.ok]


def check_all(python: str = sys.executable, plat: Platform | None = None) -> DependencyReport:
    """Every compiled dependency (and the optional ones installed), checked side by side."""
    plat = plat or read_platform()
    wanted = list(COMPILED) + [(n, c) for n, c in OPTIONAL if _installed_version(n) is not None]
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        results = list(pool.map(lambda item: check_one(item[0], item[1], python, plat), wanted))
    return DependencyReport(plat, results)


def check_compiled_dependencies(ctx: DoctorContext) -> CheckResult:
    from heimdal_tui.service.doctor import fail, ok

    report = check_all()
    if report.ok:
        versions = ", ".join(f"{r.name} {r.detail}" for r in report.results)
        return ok("compiled dependencies", f"{versions} work on {report.platform.describe()}")
    failed = "; ".join(r.line().removeprefix("FAIL  ") for r in report.failed)
    return fail("compiled dependencies", f"{failed} (on {report.platform.describe()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m heimdal_tui.service.deps",
        description="Check that every compiled dependency imports and works on this CPU "
        "(each in a child process). Exit 1 when one fails.",
    )
    parser.add_argument(
        "--recommend",
        action="store_true",
        help="print the pip requirements this CPU needs on top of the defaults, one a line, and exit",
    )
    args = parser.parse_args(argv)
    plat = read_platform()
    if args.recommend:
        for line in recommendations(plat):
            print(line)
        return 0
    print(f"platform: {plat.describe()}")
    report = check_all(plat=plat)
    for result in report.results:
        print(result.line())
    if not report.ok:
        names = ", ".join(r.name for r in report.failed)
        print(f"{len(report.failed)} compiled dependencies do not work here: {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
