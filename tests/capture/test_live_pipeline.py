"""Live capture through the whole pipeline: a veth pair in a namespace of the test's own, real traffic
(DHCP with a hostname, a DNS query, UDP datagrams) and the device the pipeline builds from it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from test_live import PEER_MAC, Veth, veth  # noqa: F401  (veth is the namespace fixture)

from heimdal_tui.capture.live import LiveSource
from heimdal_tui.devices.snapshot import snapshot
from heimdal_tui.pipeline.engine import Pipeline
from heimdal_tui.pipeline.runner import PipelineRunner

SENDER = textwrap.dedent(
    """
    import socket, sys, time
    from scapy.all import BOOTP, DHCP, IP, UDP, Ether, sendp
    iface, mac, target = sys.argv[1], sys.argv[2], sys.argv[3]
    chaddr = bytes.fromhex(mac.replace(":", "")) + b"\\0" * 10
    dhcp = (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67) / BOOTP(chaddr=chaddr, xid=7)
            / DHCP(options=[("message-type", "request"), ("hostname", b"veth-peer"),
                            ("vendor_class_id", b"android-dhcp-14"), "end"]))
    sendp(dhcp, iface=iface, verbose=False)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    query = (b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00"
             b"\\x07example\\x03org\\x00\\x00\\x01\\x00\\x01")
    s.sendto(query, (target, 53))
    for n in range(20):
        s.sendto(b"payload %d" % n, (target, 9999))
        time.sleep(0.002)
    """
)


@pytest.mark.live
def test_live_traffic_becomes_a_device_with_identity(veth: Veth):  # noqa: F811
    source = LiveSource(veth.host_if)
    source.open()
    pipeline = Pipeline()
    runner = PipelineRunner(source, pipeline)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, kwargs={"stop": stop, "tick": 0.2})
    thread.start()
    try:
        result = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                veth.ns,
                sys.executable,
                "-c",
                SENDER,
                veth.peer_if,
                PEER_MAC,
                veth.host_ip,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pipeline.stats.frames < 22:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(10)
    devices = {d["mac"]: d for d in snapshot(pipeline.devices, pipeline.directory)}
    peer = devices[PEER_MAC]
    assert peer["hostname"] == "veth-peer" and peer["hostname_source"] == "dhcp"
    assert veth.peer_ip in peer["ips"]
    assert peer["packets_out"] >= 22
    assert "udp/9999" in peer["ports"] and "udp/53" in peer["ports"]
    assert peer["dns_names"] == 1  # example.org
    assert peer["device_type"] == "phone"  # from the android DHCP vendor class
    stats = runner.stats()
    assert stats.buffer_drops == 0 and stats.decode_errors == 0
    assert stats.kernel_drops == 0
