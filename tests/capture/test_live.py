"""LiveSource against real traffic in a throw-away network namespace, plus its error messages."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heimdal_tui.capture import live
from heimdal_tui.capture.errors import CaptureError, FilterError, UnknownInterfaceError
from heimdal_tui.capture.frames import LINKTYPE_ETHERNET, FrameBatch
from heimdal_tui.capture.live import LiveSource
from heimdal_tui.capture.worker import CaptureWorker

REPO = str(Path(__file__).resolve().parents[2])
MARKER = b"heimdal-live-test"
PEER_MAC = "02:77:00:00:00:02"


@dataclass
class Veth:
    ns: str
    host_if: str  # in this namespace
    peer_if: str  # inside ns
    host_ip: str
    peer_ip: str


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def veth() -> Iterator[Veth]:
    if os.geteuid() != 0:
        pytest.skip("live capture tests need root (network namespaces and raw sockets)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` command is not installed")
    tag = secrets.token_hex(4)
    ns = f"hd{tag}"
    env = Veth(ns, f"hd{tag}a", f"hd{tag}b", "", "")
    # A random /24 so that concurrent runs on the same machine do not share a subnet.
    subnet = f"10.77.{secrets.randbelow(250) + 1}"
    env.host_ip, env.peer_ip = f"{subnet}.1", f"{subnet}.2"
    added = _ip("netns", "add", ns)
    if added.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {added.stderr.strip()}")
    try:
        steps = [
            ["link", "add", env.host_if, "type", "veth", "peer", "name", env.peer_if],
            ["link", "set", env.peer_if, "address", PEER_MAC],
            ["link", "set", env.peer_if, "netns", ns],
            ["addr", "add", f"{env.host_ip}/24", "dev", env.host_if],
            ["link", "set", env.host_if, "up"],
            ["netns", "exec", ns, "ip", "addr", "add", f"{env.peer_ip}/24", "dev", env.peer_if],
            ["netns", "exec", ns, "ip", "link", "set", env.peer_if, "up"],
            ["netns", "exec", ns, "ip", "link", "set", "lo", "up"],
        ]
        for step in steps:
            result = _ip(*step)
            if result.returncode != 0:
                pytest.skip(f"cannot set up the veth pair (ip {' '.join(step)}): {result.stderr.strip()}")
        yield env
    finally:
        _ip("link", "del", env.host_if)  # removes the peer too
        _ip("netns", "del", ns)


SENDER = textwrap.dedent(
    """
    import os, socket, struct, sys, time
    target, count = sys.argv[1], int(sys.argv[2])

    def checksum(data):
        if len(data) % 2:
            data += b"\\0"
        total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        total = (total >> 16) + (total & 0xFFFF)
        total += total >> 16
        return ~total & 0xFFFF

    def ping(seq):
        icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        icmp.settimeout(2.0)
        body = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, seq) + b"ping"
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        icmp.sendto(body, (target, 0))
        try:
            icmp.recv(2048)  # the echo reply: ARP is resolved by now
        except socket.timeout:
            pass

    ping(1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for n in range(count):
        udp.sendto(b"%s %d" % (sys.argv[3].encode(), n), (target, 9999))
        time.sleep(0.001)
    ping(2)
    ping(3)
    """
)


def send_traffic(env: Veth, datagrams: int = 50) -> None:
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            env.ns,
            sys.executable,
            "-c",
            SENDER,
            env.host_ip,
            str(datagrams),
            MARKER.decode(),
        ],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 0, result.stderr


def capture(source: LiveSource, env: Veth) -> list[FrameBatch]:
    source.open()  # the socket is listening before any traffic is sent
    worker = CaptureWorker(source)
    worker.start()
    send_traffic(env)
    time.sleep(0.15)  # longer than one flush interval
    start = time.monotonic()
    worker.stop()
    assert time.monotonic() - start < 0.5, "stop() was not honoured promptly"
    batches = list(worker.batches())
    assert worker.error is None
    return batches


def classify(frame: bytes) -> str:
    """'marker' (our UDP datagram to port 9999), 'icmp', 'udp', 'arp' or 'other'."""
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0806:
        return "arp"
    if ethertype != 0x0800:
        return "other"
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    if proto == 1:
        return "icmp"
    if proto == 17:
        udp = 14 + ihl
        dport = int.from_bytes(frame[udp + 2 : udp + 4], "big")
        return "marker" if dport == 9999 and frame[udp + 8 :].startswith(MARKER) else "udp"
    return "other"


def frames_of(batches: list[FrameBatch]) -> list[bytes]:
    return [b.frame(i) for b in batches for i in range(len(b))]


@pytest.mark.live
def test_captures_traffic_from_the_namespace(veth: Veth) -> None:
    source = LiveSource(veth.host_if)
    assert source.linktype == LINKTYPE_ETHERNET
    assert veth.host_if in source.describe()
    batches = capture(source, veth)
    frames = frames_of(batches)
    kinds = [classify(f) for f in frames]
    assert kinds.count("marker") == 50
    assert "icmp" in kinds
    peer_mac = bytes.fromhex(PEER_MAC.replace(":", ""))
    markers = [f for f, k in zip(frames, kinds, strict=True) if k == "marker"]
    assert all(f[6:12] == peer_mac for f in markers)
    numbers = [int(f.rsplit(b" ", 1)[1]) for f in markers]
    assert numbers == list(range(50))
    assert all(int(lt) == LINKTYPE_ETHERNET for b in batches for lt in b.linktype)
    stats = source.stats
    assert stats.frames == len(frames)
    assert stats.bytes == sum(len(f) for f in frames)
    assert stats.kernel_drops == 0
    assert stats.buffer_drops == 0
    assert stats.last_ts is not None and abs(stats.last_ts - time.time()) < 30


@pytest.mark.live
def test_bpf_filter_keeps_only_matching_frames(veth: Veth) -> None:
    source = LiveSource(veth.host_if, bpf_filter="udp port 9999")
    kinds = [classify(f) for f in frames_of(capture(source, veth))]
    assert kinds.count("marker") == 50
    assert set(kinds) == {"marker"}


def test_unknown_interface_lists_the_real_ones() -> None:
    with pytest.raises(UnknownInterfaceError) as info:
        LiveSource("nosuchif0")
    assert "lo" in info.value.available
    assert "'lo'" in str(info.value) or " lo" in str(info.value)
    with pytest.raises(UnknownInterfaceError):
        LiveSource("../lo")


def test_bad_filter_is_a_filter_error() -> None:
    with pytest.raises(FilterError) as info:
        LiveSource("lo", bpf_filter="udp port nonsense")
    message = str(info.value)
    assert "udp port nonsense" in message
    assert "nonsense" in message.split(":", 1)[1]


PERMISSION_SNIPPET = textwrap.dedent(
    f"""
    import sys
    sys.path.insert(0, {REPO!r})
    from heimdal_tui.capture.errors import CapturePermissionError
    from heimdal_tui.capture.live import LiveSource
    try:
        LiveSource("lo").open()
    except CapturePermissionError as exc:
        print(exc)
        sys.exit(0)
    print("capture opened without privileges")
    sys.exit(1)
    """
)


@pytest.mark.live
def test_unprivileged_user_gets_setcap_advice() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*as_nobody, sys.executable, "-c", "import numpy, scapy"], capture_output=True, cwd="/", timeout=30
    )
    if probe.returncode != 0:
        # This interpreter's packages are unreadable to nobody (e.g. under /root): stay root but
        # without the capture capabilities, which is what the error is about.
        as_nobody = [setpriv, "--bounding-set=-net_raw,-net_admin"]
    result = subprocess.run(
        [*as_nobody, sys.executable, "-c", PERMISSION_SNIPPET],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "setcap cap_net_raw,cap_net_admin=eip" in result.stdout
    assert os.path.realpath(sys.executable) in result.stdout
    assert "Traceback" not in result.stderr


def test_default_interface_prefers_the_default_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth1\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    )
    route6 = tmp_path / "ipv6_route"
    route6.write_text(
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth2\n"
    )
    monkeypatch.setattr(live, "PROC_ROUTE", str(route))
    monkeypatch.setattr(live, "PROC_IPV6_ROUTE", str(route6))
    monkeypatch.setattr(live, "list_interfaces", lambda: ["eth1", "eth2", "lo", "wlan0"])
    assert live.default_interface() == "eth1"
    route.write_text("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n")
    assert live.default_interface() == "eth2"  # IPv6-only default route; lo's reject route ignored


def test_default_source_has_a_usable_interface() -> None:
    try:
        source = LiveSource()
    except CaptureError as exc:  # a machine with no interface up at all
        pytest.skip(str(exc))
    assert source.interface in live.list_interfaces()
