"""Shared by the Asgard tests: alerts and device rows to send, the reference server (in a thread or
as a real `heimdal-tui asgard-dev` process), and bounded waits on real conditions."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from heimdal_tui.asgard import AsgardLink
from heimdal_tui.asgard.devserver import AsgardDevServer, FaultPlan
from heimdal_tui.config import AsgardConfig
from heimdal_tui.detect.alerts import Alert
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.model import Severity
from heimdal_tui.store import Store

API_KEY = "test-key-4f1c9a7e2b"
FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "connect_timeout": 2.0, "read_timeout": 10.0}


def make_alert(n: int = 0, severity: str = "high", **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": f"alert{n:05d}",
        "kind": "port_scan",
        "severity": Severity(severity),
        "score": 7.5,
        "ts": 1_700_000_000.0 + n,
        "device": DeviceRef(0x001122334455 + n, "00:11:22:33:44:55", "192.168.1.20", "nas-office", "nas"),
        "peer": "203.0.113.9",
        "first_seen": 1_700_000_000.0 + n,
        "last_seen": 1_700_000_010.0 + n,
        "count": 3,
        "summary": "203.0.113.9 probed 40 ports of nas-office",
        "evidence": {
            "scanner": "192.168.1.70",
            "scan_type": "vertical",
            "distinct_ports": 40,
            "window_s": 60.0,
        },
    }
    fields.update(changes)
    return Alert(**fields)


def device_row(n: int = 0, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "device": 0x3C2AF4000000 + n,
        "mac": f"3c:2a:f4:00:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}",
        "ips": [f"192.168.1.{n % 250 + 2}"],
        "vendor": "Brother Industries, LTD.",
        "randomized_mac": False,
        "hostname": f"printer-{n}",
        "hostname_source": "dhcp",
        "device_type": "printer",
        "device_type_confidence": 0.9,
        "device_type_reasons": ["vendor Brother"],
        "first_seen": "2026-03-02T08:00:00.000Z",
        "last_seen": "2026-03-02T08:40:00.000Z",
        "packets_in": 10 + n,
        "packets_out": 20,
        "bytes_in": 1000,
        "bytes_out": 2000,
        "bps_10s": 1.0,
        "bps_1m": 2.0,
        "bps_5m": 3.0,
        "peers": 1,
        "top_peers": [{"ip": "8.8.8.8", "name": "dns.google", "packets": 4, "bytes": 400}],
        "ports": ["udp/53", "tcp/631 (served)"],
        "protocols": ["udp", "tcp"],
        "dns_names": 1,
        "sparkline": [0, 10, 20],
    }
    row.update(changes)
    return row


def link_for(url: str, store: Store, key: str = API_KEY, **config: Any) -> AsgardLink:
    settings = {**FAST, **config}
    return AsgardLink(AsgardConfig(url=url, **settings), store, env={"HEIMDAL_ASGARD_API_KEY": key})


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; fail naming ``what`` when it never becomes so."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@contextmanager
def dev_server(data_dir: Path, faults: FaultPlan | None = None, **options: Any) -> Iterator[AsgardDevServer]:
    server = AsgardDevServer(data_dir, API_KEY, faults=faults, **options).start()
    try:
        yield server
    finally:
        server.stop()


def received(data_dir: Path, name: str = "anomalies.jsonl") -> list[dict[str, Any]]:
    path = data_dir / "received" / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server_process(data_dir: Path, *flags: str, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    """`heimdal-tui asgard-dev` as a real process; (process, its URL) once it listens."""
    env = dict(os.environ, HEIMDAL_ASGARD_API_KEY=API_KEY)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "heimdal_tui",
            "asgard-dev",
            "--port",
            str(port),
            "--data",
            str(data_dir),
            "-q",
            *flags,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = re.search(r"listening on (\S+)", line)
    if found is None:
        proc.kill()
        raise AssertionError(f"asgard-dev did not start: {line!r} {proc.stderr.read()!r}")
    return proc, found.group(1)


def stop_process(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


def registered(link: AsgardLink) -> bool:
    """The link has registered and fetched intelligence once (its first requests are behind it)."""
    sender = link.sender
    return sender is not None and sender.state.intel_due > 0


def failures(link: AsgardLink) -> int:
    """Consecutive failed requests of the link's sender."""
    return 0 if link.sender is None else link.sender.state.failures
