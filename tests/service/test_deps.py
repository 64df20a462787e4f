"""The compiled-dependency check: every dependency works here; a child that dies of SIGILL or of
jemalloc's page-size abort is reported with what to do on a Pi 4 or Pi 5; polars' compat runtime is
recommended exactly on x86-64 CPUs without the features its default build needs.

The Pi platforms are described by /proc/cpuinfo texts in the kernel's format (this machine is not
a Pi); the failing dependencies are real child processes that die the way such builds die."""

from __future__ import annotations

import subprocess
import sys

from heimdal_tui.service.deps import (
    DependencyResult,
    check_all,
    check_one,
    main,
    polars_requirement,
    read_platform,
)

PI4_CPUINFO = """processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Revision	: c03114
Model		: Raspberry Pi 4 Model B Rev 1.4
"""
PI5_CPUINFO = """processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

Model		: Raspberry Pi 5 Model B Rev 1.0
"""
OLD_X86_CPUINFO = """processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Celeron(R) CPU J1900 @ 1.99GHz
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr \
sse sse2 ss ht tm pbe syscall nx rdtscp lm constant_tsc pni pclmulqdq ssse3 cx16 sse4_1 sse4_2 movbe popcnt
"""
MODERN_X86_FLAGS = "flags : pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt avx bmi1 avx2 bmi2 abm\n"


def test_every_compiled_dependency_works_here():
    report = check_all()
    assert report.ok, [r.line() for r in report.failed]
    names = [r.name for r in report.results]
    assert names[:5] == ["numpy", "polars", "iptocc", "scapy+libpcap", "sqlite3"]
    assert all(r.detail[0].isdigit() for r in report.results)  # each printed its version


def test_the_command_prints_one_line_each_and_exits_0():
    done = subprocess.run(
        [sys.executable, "-m", "heimdal_tui.service.deps"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("platform: ") and len(lines) >= 6
    assert all(line.startswith("ok    ") for line in lines[1:])


def test_the_pis_are_recognised():
    pi4 = read_platform(PI4_CPUINFO, model="", page_size=4096, machine="aarch64")
    assert pi4.describe() == (
        "Raspberry Pi 4 Model B Rev 1.4, Cortex-A72, 4 KiB pages, no LSE atomics, no AES/SHA extensions"
    )
    pi5 = read_platform(
        PI5_CPUINFO, model="Raspberry Pi 5 Model B Rev 1.0", page_size=16384, machine="aarch64"
    )
    assert pi5.describe() == "Raspberry Pi 5 Model B Rev 1.0, Cortex-A76, 16 KiB pages, LSE atomics, AES/SHA"


def test_an_illegal_instruction_on_a_pi_4_is_explained():
    pi4 = read_platform(PI4_CPUINFO, model="", page_size=4096, machine="aarch64")
    died = check_one("fakelib", "import os, signal; os.kill(os.getpid(), signal.SIGILL)", plat=pi4)
    assert not died.ok and "the interpreter died (SIGILL)" in died.detail
    assert "LSE atomics" in died.hint and "Cortex-A72" in died.hint
    assert died.line().startswith("FAIL  fakelib: ")


def test_jemalloc_on_16k_pages_is_explained():
    pi5 = read_platform(PI5_CPUINFO, model="", page_size=16384, machine="aarch64")
    code = (
        "import os, sys; sys.stderr.write('<jemalloc>: Unsupported system page size\\n');"
        " sys.stderr.flush(); os.abort()"
    )
    died = check_one("fakepolars", code, plat=pi5)
    assert not died.ok and "SIGABRT" in died.detail
    assert "16 KiB" in died.hint and "kernel=kernel8.img" in died.hint


def test_an_import_error_is_reported_with_its_last_line():
    result = check_one("missing", "import heimdal_no_such_module")
    assert result == DependencyResult(
        "missing", False, "ModuleNotFoundError: No module named 'heimdal_no_such_module'", ""
    )


def test_polars_compat_runtime_only_where_needed():
    old = read_platform(OLD_X86_CPUINFO, model="", page_size=4096, machine="x86_64")
    assert polars_requirement(old, "2.1.0") == "polars[rtcompat]==2.1.0"
    assert polars_requirement(old, "1.33.1") == "polars-lts-cpu==1.33.1"
    modern = read_platform(MODERN_X86_FLAGS, model="", page_size=4096, machine="x86_64")
    assert polars_requirement(modern, "2.1.0") is None
    for cpuinfo in (PI4_CPUINFO, PI5_CPUINFO):
        pi = read_platform(cpuinfo, model="", page_size=16384, machine="aarch64")
        assert polars_requirement(pi, "2.1.0") is None
    assert polars_requirement(old, None) is None  # polars not installed


def test_recommend_prints_nothing_on_this_machine_when_its_cpu_is_modern(capsys):
    assert main(["--recommend"]) == 0
    printed = capsys.readouterr().out.strip()
    here = read_platform()
    expected = polars_requirement(here, __import__("importlib.metadata").metadata.version("polars"))
    assert printed == (expected or "")
