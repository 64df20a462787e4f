"""Live capture from a network interface through a Linux PF_PACKET socket (scapy's L2listen).

Frames are read with a non-blocking socket behind ``select()`` with a short timeout, so ``stop()``
takes effect within ~0.1 s, and gathered into a FrameBatch every ``BATCH_FRAMES`` frames or
``FLUSH_INTERVAL`` seconds, whichever comes first.

Everything that can go wrong at start (no such interface, no permission, a filter libpcap cannot
compile) is raised as a CaptureError subclass whose message tells the operator what to do. The
interface and the filter are checked in the constructor (no privileges needed); the socket is
opened by ``open()``, which ``batches()`` calls if nobody did before.

Wire lengths: the socket API used here does not report a frame's length on the wire, so ``wirelen``
is the captured length; the two differ only for frames longer than ``snaplen``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from heimdal_tui.capture.errors import (
    CaptureError,
    CapturePermissionError,
    FilterError,
    UnknownInterfaceError,
)
from heimdal_tui.capture.frames import LINKTYPE_ETHERNET, LINKTYPE_RAW, FrameBatch
from heimdal_tui.capture.source import SourceStats

SYS_NET = "/sys/class/net"
PROC_ROUTE = "/proc/net/route"
PROC_IPV6_ROUTE = "/proc/net/ipv6_route"

BATCH_FRAMES = 4096
FLUSH_INTERVAL = 0.1  # seconds a frame may wait in a partial batch
SELECT_TIMEOUT = 0.1  # bounds how long stop() takes to be noticed
KERNEL_STATS_INTERVAL = 1.0
RCVBUF_BYTES = 8 * 1024 * 1024  # socket receive buffer: absorbs bursts while Python catches up

SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33  # like SO_RCVBUF, but may exceed net.core.rmem_max (needs CAP_NET_ADMIN)

ARPHRD_ETHER = 1
ARPHRD_PPP = 512
ARPHRD_TUNNEL = 768
ARPHRD_TUNNEL6 = 769
ARPHRD_SIT = 776
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 65534

# ARPHRD (sysfs "type") -> the link type of what a PF_PACKET SOCK_RAW socket reads there. Linux
# gives loopback an Ethernet header; tun/WireGuard (NONE), PPP and IP-in-IP tunnels carry bare IP.
ARPHRD_LINKTYPES = {
    ARPHRD_ETHER: LINKTYPE_ETHERNET,
    ARPHRD_LOOPBACK: LINKTYPE_ETHERNET,
    ARPHRD_NONE: LINKTYPE_RAW,
    ARPHRD_PPP: LINKTYPE_RAW,
    ARPHRD_TUNNEL: LINKTYPE_RAW,
    ARPHRD_TUNNEL6: LINKTYPE_RAW,
    ARPHRD_SIT: LINKTYPE_RAW,
}

_IFF_UP = 0x1
_RTF_UP = 0x1
_RTF_REJECT = 0x200


# -- interfaces ------------------------------------------------------------------------------------
def list_interfaces() -> list[str]:
    """Names of the network interfaces on this machine (sorted)."""
    try:
        return sorted(os.listdir(SYS_NET))
    except OSError:
        return []


def _read_sys(name: str, attribute: str) -> str | None:
    try:
        with open(os.path.join(SYS_NET, name, attribute)) as f:
            return f.read().strip()
    except OSError:
        return None


def interface_type(name: str) -> int | None:
    """The interface's ARPHRD type (1 Ethernet, 772 loopback, 65534 none/tun...), None if unknown."""
    value = _read_sys(name, "type")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def interface_is_up(name: str) -> bool:
    value = _read_sys(name, "flags")
    try:
        return value is not None and bool(int(value, 16) & _IFF_UP)
    except ValueError:
        return False


def _default_route_interfaces() -> list[str]:
    """Interfaces holding an IPv4 default route (lowest metric first), then IPv6 ones."""
    found: list[tuple[int, str]] = []
    try:
        with open(PROC_ROUTE) as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        iface, dest, _gw, flags, _ref, _use, metric, mask = fields[:8]
        try:
            if dest == "00000000" and mask == "00000000" and int(flags, 16) & _RTF_UP:
                found.append((int(metric), iface))
        except ValueError:
            continue
    found6: list[tuple[int, str]] = []
    try:
        with open(PROC_IPV6_ROUTE) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) < 10:
            continue
        dest, plen, metric, flags, iface = fields[0], fields[1], fields[5], fields[8], fields[9]
        try:
            flag_bits = int(flags, 16)
            if (
                dest == "0" * 32
                and int(plen, 16) == 0
                and flag_bits & _RTF_UP
                and not flag_bits & _RTF_REJECT
                and iface != "lo"
            ):
                found6.append((int(metric, 16), iface))
        except ValueError:
            continue
    return [name for _, name in sorted(found)] + [name for _, name in sorted(found6)]


def default_interface() -> str | None:
    """The interface holding the default route, else the first non-loopback interface that is up."""
    existing = set(list_interfaces())
    for name in _default_route_interfaces():
        if name in existing:
            return name
    for name in sorted(existing):
        if interface_type(name) != ARPHRD_LOOPBACK and interface_is_up(name):
            return name
    return None


# -- messages --------------------------------------------------------------------------------------
def permission_message(interface: str) -> str:
    exe = os.path.realpath(sys.executable)
    return (
        f"not allowed to capture on {interface}: live capture needs the CAP_NET_RAW and CAP_NET_ADMIN "
        f"capabilities. Grant them to the Python interpreter that runs heimdal with "
        f"`sudo setcap cap_net_raw,cap_net_admin=eip {exe}` (setcap needs the real file behind the "
        f"venv's python symlink, and every program that interpreter runs gets them; a venv made with "
        f"`python3 -m venv --copies` keeps them private), or run the heimdal service (its systemd unit "
        f"grants them through AmbientCapabilities), or run as root."
    )


def _pcap_reason(exc: BaseException) -> str:
    """libpcap's own words from scapy's 'Failed to compile filter expression ... (reason)'."""
    text = str(exc)
    match = re.search(r"\(([^()]*)\)\s*$", text)
    return match.group(1) if match else text


_NO_LIBPCAP = (
    "libpcap, which compiles capture filters, is not available; install it "
    "(Debian/Ubuntu: sudo apt install libpcap0.8) or capture without a filter"
)


def check_filter(expression: str, linktype: int = LINKTYPE_ETHERNET) -> None:
    """Raise FilterError unless libpcap can compile ``expression`` (needs no privileges)."""
    try:
        from scapy.arch.common import compile_filter, free_filter
        from scapy.error import Scapy_Exception
    except ImportError as exc:
        raise FilterError(
            f"cannot use capture filter {expression!r}: scapy is not available ({exc})"
        ) from exc
    try:
        program = compile_filter(expression, linktype=linktype)
    except (ImportError, OSError) as exc:
        raise FilterError(f"cannot use capture filter {expression!r}: {_NO_LIBPCAP}") from exc
    except Scapy_Exception as exc:
        raise FilterError(f"invalid capture filter {expression!r}: {_pcap_reason(exc)}") from exc
    with contextlib.suppress(Exception):  # else a few bytes of BPF code leak; nothing to report
        free_filter(program)


class _QuietScapyGuess(logging.Filter):
    """Drops scapy's "Unable to guess type" warning: we never let scapy dissect, and a warning on
    stderr would garble the terminal UI."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to guess type")


_quiet_filter = _QuietScapyGuess()


def _quiet_scapy() -> None:
    logger = logging.getLogger("scapy.runtime")
    if _quiet_filter not in logger.filters:
        logger.addFilter(_quiet_filter)


# -- the source ------------------------------------------------------------------------------------
class LiveSource:
    """Frames captured on a network interface as they arrive."""

    live: bool = True

    def __init__(
        self,
        interface: str | None = None,
        bpf_filter: str | None = None,
        snaplen: int = 65535,
        promisc: bool = True,
    ) -> None:
        if not 64 <= snaplen <= 262_144:
            raise ValueError("snaplen must be between 64 and 262144 bytes")
        names = list_interfaces()
        if interface is None:
            interface = default_interface()
            if interface is None:
                listing = ", ".join(names) if names else "(none found)"
                raise CaptureError(
                    f"no network interface to capture on: none holds a default route or is up "
                    f"(interfaces here: {listing}); name one explicitly"
                )
        if not interface or "/" in interface or interface in (".", "..") or interface not in names:
            raise UnknownInterfaceError(interface, names)
        arphrd = interface_type(interface)
        linktype = ARPHRD_LINKTYPES.get(arphrd) if arphrd is not None else None
        if linktype is None:
            raise CaptureError(
                f"interface {interface!r} has link-layer type {arphrd} "
                f"(see /sys/class/net/{interface}/type), which heimdal cannot decode; capture on an "
                f"Ethernet, Wi-Fi (managed mode), loopback or tunnel interface instead"
            )
        if bpf_filter is not None:
            bpf_filter = bpf_filter.strip() or None
        if bpf_filter is not None:
            check_filter(bpf_filter, linktype)
        self.interface = interface
        self.bpf_filter = bpf_filter
        self.snaplen = snaplen
        self.promisc = promisc
        self.linktype = linktype
        self.stats = SourceStats()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sock: Any = None
        self._running = False
        self._kernel_stats_ok = False

    def describe(self) -> str:
        text = f"live capture on {self.interface}"
        if self.bpf_filter:
            text += f" (filter: {self.bpf_filter})"
        return text

    # -- opening ----------------------------------------------------------------------------
    def open(self) -> None:
        """Open the capture socket now (idempotent): capture starts here, errors surface here."""
        with self._lock:
            if self._sock is None:
                self._sock = self._open_socket()
                self._start_kernel_stats()

    def _open_socket(self) -> Any:
        iface = self.interface
        try:
            import scapy.arch  # noqa: F401  (sets conf.L2listen for this platform)
            from scapy.config import conf
            from scapy.error import Scapy_Exception
        except ImportError as exc:
            raise CaptureError(f"live capture needs scapy, which failed to load: {exc}") from exc
        _quiet_scapy()
        listen = conf.L2listen
        if interface_type(iface) == ARPHRD_LOOPBACK and conf.L2socket is not None:
            # On loopback every packet passes twice, going out and coming in; scapy's L2socket
            # (unlike L2listen) skips the outgoing copy, as libpcap does there.
            listen = conf.L2socket
        if listen is None:
            raise CaptureError("live capture is not supported on this platform (scapy has no L2listen)")
        kwargs: dict[str, Any] = {"iface": iface, "promisc": self.promisc}
        if self.bpf_filter:
            kwargs["filter"] = self.bpf_filter
        try:
            sock = listen(**kwargs)
        except PermissionError as exc:
            raise CapturePermissionError(permission_message(iface)) from exc
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise CapturePermissionError(permission_message(iface)) from exc
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise UnknownInterfaceError(iface, list_interfaces()) from exc
            if exc.errno == errno.ENETDOWN:
                raise CaptureError(
                    f"interface {iface} is down; bring it up with `sudo ip link set {iface} up`"
                ) from exc
            raise CaptureError(f"cannot capture on {iface}: {exc.strerror or exc}") from exc
        except Scapy_Exception as exc:
            if self.bpf_filter and "filter" in str(exc).lower():
                reason = _pcap_reason(exc)
                if "libpcap is not available" in str(exc):
                    reason = _NO_LIBPCAP
                raise FilterError(f"cannot use capture filter {self.bpf_filter!r}: {reason}") from exc
            raise CaptureError(f"cannot capture on {iface}: {exc}") from exc
        except ValueError as exc:  # scapy could not resolve the interface (it vanished)
            raise UnknownInterfaceError(iface, list_interfaces()) from exc
        ins = sock.ins
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                ins.setsockopt(socket.SOL_SOCKET, option, RCVBUF_BYTES)
                break
            except OSError:
                continue
        ins.setblocking(False)
        return sock

    # -- kernel drop counters ---------------------------------------------------------------
    def _read_kernel_counters(self) -> tuple[int, int] | None:
        sock = self._sock
        if sock is None:
            return None
        try:
            raw = sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            packets, drops = struct.unpack("II", raw)
        except (OSError, struct.error, AttributeError):
            return None
        return packets, drops

    def _start_kernel_stats(self) -> None:
        # The counters reset on every read: this first read throws away what the socket dropped
        # before it was bound to the interface (scapy opens it with a zero-sized buffer).
        self._kernel_stats_ok = self._read_kernel_counters() is not None
        if self._kernel_stats_ok:
            self.stats.kernel_drops = 0

    def _update_kernel_stats(self) -> None:
        if not self._kernel_stats_ok:
            return
        counters = self._read_kernel_counters()
        if counters is not None:
            self.stats.kernel_drops = (self.stats.kernel_drops or 0) + counters[1]

    # -- capturing --------------------------------------------------------------------------
    def batches(self) -> Iterator[FrameBatch]:
        with self._lock:
            if self._running:
                raise RuntimeError("LiveSource.batches() is already running")
            self._running = True
        try:
            if self._stopped.is_set():
                return
            self.open()
            yield from self._capture()
        finally:
            with self._lock:
                self._running = False
                self._update_kernel_stats()
                self._close()

    def _capture(self) -> Iterator[FrameBatch]:
        sock = self._sock
        recv = sock.recv_raw
        fd = sock.ins.fileno()
        snaplen = self.snaplen
        stopped = self._stopped
        self.stats.started_at = time.monotonic()
        pending: list[tuple[float, bytes, int]] = []
        first_at = 0.0
        next_stats = time.monotonic() + KERNEL_STATS_INTERVAL
        while not stopped.is_set():
            timeout = SELECT_TIMEOUT
            if pending:
                timeout = min(timeout, max(0.0, first_at + FLUSH_INTERVAL - time.monotonic()))
            readable, _, _ = select.select([fd], [], [], timeout)
            if readable:
                while len(pending) < BATCH_FRAMES:
                    try:
                        _cls, data, ts = recv(snaplen)
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        raise CaptureError(
                            f"capture on {self.interface} failed: {exc.strerror or exc}"
                            + (" (the interface went down or away)" if exc.errno == errno.ENETDOWN else "")
                        ) from exc
                    if data is None:
                        continue
                    if not pending:
                        first_at = time.monotonic()
                    pending.append((time.time() if ts is None else float(ts), data, len(data)))
            now = time.monotonic()
            if pending and (len(pending) >= BATCH_FRAMES or now - first_at >= FLUSH_INTERVAL):
                yield self._flush(pending)
                pending = []
            if now >= next_stats:
                self._update_kernel_stats()
                next_stats = now + KERNEL_STATS_INTERVAL
        if pending:
            yield self._flush(pending)

    def _flush(self, pending: list[tuple[float, bytes, int]]) -> FrameBatch:
        batch = FrameBatch.from_frames(pending, self.linktype)
        self.stats.count(batch)
        return batch

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        """End ``batches()`` within ~0.1 s (frames already read are still handed out)."""
        self._stopped.set()
        with self._lock:
            if not self._running:
                self._close()
