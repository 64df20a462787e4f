"""Doctor checks of the machine: capture permission, the interface, libpcap, the clock."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from heimdal_tui.service.doctor import CheckResult, DoctorContext, fail, ok, warn

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
SYS_NET = Path("/sys/class/net")
# The year this code was written: a clock before it was never set (a Pi has no battery clock).
EARLIEST_SANE_YEAR = 2025
_IFF_UP = 0x1


# -- capture permission ----------------------------------------------------------------------------
def process_capabilities(status_file: Path = Path("/proc/self/status")) -> tuple[int, bool] | None:
    """The effective capability mask and the NoNewPrivs flag of a process, None when unreadable."""
    try:
        text = status_file.read_text()
    except OSError:
        return None
    effective = None
    no_new_privs = False
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            effective = int(line.split()[1], 16)
        elif line.startswith("NoNewPrivs:"):
            no_new_privs = line.split()[1] == "1"
    return None if effective is None else (effective, no_new_privs)


def _file_capabilities(path: str) -> bool:
    try:
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def _daemon_capabilities(ctx: DoctorContext) -> str | None:
    """What the running daemon (if any) may do: it is the process that captures."""
    from heimdal_tui.service.lock import DaemonLockError, running_daemon

    try:
        info = running_daemon(ctx.data_dir)
    except DaemonLockError:
        return None
    if info is None or info.pid <= 0:
        return None
    caps = process_capabilities(Path(f"/proc/{info.pid}/status"))
    if caps is None:
        return None
    mask = caps[0]
    has = [
        n for n, bit in (("CAP_NET_RAW", CAP_NET_RAW), ("CAP_NET_ADMIN", CAP_NET_ADMIN)) if mask >> bit & 1
    ]
    return f"the running daemon (pid {info.pid}) has {' and '.join(has) if has else 'neither capability'}"


def check_capture_permission(ctx: DoctorContext) -> CheckResult:
    name = "capture permission"
    caps = process_capabilities()
    if caps is None:
        return warn(name, "cannot read this process's capabilities (/proc/self/status)")
    mask, no_new_privs = caps
    raw, admin = bool(mask >> CAP_NET_RAW & 1), bool(mask >> CAP_NET_ADMIN & 1)
    daemon = _daemon_capabilities(ctx)
    suffix = f"; {daemon}" if daemon else ""
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    if raw and admin:
        return ok(name, f"CAP_NET_RAW and CAP_NET_ADMIN effective (running as {who}){suffix}")
    exe = os.path.realpath(sys.executable)
    how = (
        f"grant them with `sudo setcap cap_net_raw,cap_net_admin=eip {exe}` (a venv made with "
        "`python3 -m venv --copies` keeps them private to it), run the installed service (its unit "
        "grants them through AmbientCapabilities), or run as root"
    )
    if no_new_privs and _file_capabilities(exe):
        how = f"{exe} has file capabilities, but this process runs with NoNewPrivileges, which ignores them"
    if raw:
        return warn(
            name,
            f"CAP_NET_RAW but not CAP_NET_ADMIN (running as {who}): capture works, without promiscuous "
            f"mode or a large socket buffer; {how}{suffix}",
        )
    return fail(name, f"no CAP_NET_RAW (running as {who}): live capture will fail; {how}{suffix}")


# -- interface -------------------------------------------------------------------------------------
def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def check_interface(ctx: DoctorContext) -> CheckResult:
    from heimdal_tui.capture.live import default_interface, list_interfaces

    name = "interface"
    wanted = ctx.interface or ctx.config.capture.interface
    chosen = wanted or default_interface()
    existing = list_interfaces()
    if chosen is None:
        listed = ", ".join(existing) or "none"
        return fail(
            name, f"no interface holds a default route and none is up (here: {listed}); pass --interface"
        )
    how = "given" if wanted else "the default route's"
    if chosen not in existing:
        listed = ", ".join(existing) or "none"
        return fail(name, f"no interface {chosen!r} on this machine (interfaces here: {listed})")
    base = SYS_NET / chosen
    flags = _read(base / "flags")
    try:
        up = flags is not None and bool(int(flags, 16) & _IFF_UP)
    except ValueError:
        up = False
    if not up:
        return fail(name, f"{chosen} ({how}) is down: bring it up (sudo ip link set {chosen} up)")
    carrier = _read(base / "carrier")
    operstate = _read(base / "operstate") or "unknown"
    if carrier != "1":
        return warn(name, f"{chosen} ({how}) is up but has no carrier (cable or Wi-Fi link down?)")
    return ok(name, f"{chosen} ({how}) is up, carrier present, state {operstate}")


# -- libpcap ---------------------------------------------------------------------------------------
def check_libpcap(ctx: DoctorContext, library: str = "pcap") -> CheckResult:
    """scapy compiles capture filters with libpcap (loaded with ctypes)."""
    name = "libpcap"
    found = ctypes.util.find_library(library)
    if found is None:
        return fail(
            name,
            f"lib{library} not found: capture filters cannot be compiled "
            "(Debian/Raspberry Pi OS: sudo apt install libpcap0.8)",
        )
    try:
        ctypes.CDLL(found)
    except OSError as exc:
        return fail(name, f"{found} does not load: {exc} (reinstall libpcap0.8)")
    if library == "pcap":
        from heimdal_tui.capture.errors import FilterError
        from heimdal_tui.capture.live import check_filter

        try:
            check_filter("tcp port 80 or udp port 53")
        except FilterError as exc:
            return fail(name, str(exc))
    return ok(name, f"{found} compiles capture filters")


# -- clock -----------------------------------------------------------------------------------------
class _Timex(ctypes.Structure):
    # Only ``modes`` (the first field) matters: zero means "read, change nothing". The rest is room
    # for the kernel's struct timex, whatever its exact layout (208 bytes on 64-bit Linux).
    _fields_ = [("modes", ctypes.c_uint), ("rest", ctypes.c_byte * 508)]


_TIME_ERROR = 5


def _ntp_state() -> tuple[bool | None, str]:
    """(synchronised?, how it was learned); None when nothing could tell."""
    timedatectl = shutil.which("timedatectl")
    if timedatectl is not None:
        try:
            done = subprocess.run(
                [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=3,
                check=False,
            )
            value = done.stdout.strip()
            if done.returncode == 0 and value in ("yes", "no"):
                return value == "yes", "timedatectl"
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        state = libc.adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return None, "no way to ask"
    if state < 0:
        return None, "adjtimex failed"
    return state != _TIME_ERROR, "adjtimex"


def check_clock(ctx: DoctorContext, now: float | None = None) -> CheckResult:
    name = "clock"
    when = time.time() if now is None else now
    year = time.gmtime(when).tm_year
    shown = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    if year < EARLIEST_SANE_YEAR or year > 2100:
        return fail(
            name,
            f"the clock says {shown}: it was never set (a Raspberry Pi has no battery-backed clock); "
            "alerts and retention would use that date. Wait for NTP (timedatectl status) or set it",
        )
    synced, source = _ntp_state()
    if synced is None:
        return ok(name, f"{shown} (synchronisation unknown: {source})")
    if not synced:
        return warn(name, f"{shown}, not synchronised ({source}): check NTP (timedatectl timesync-status)")
    return ok(name, f"{shown}, synchronised ({source})")
