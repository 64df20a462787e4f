"""`heimdal-tui analyze FILE --sync` against `heimdal-tui asgard-dev`, both real processes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from asgard_support import API_KEY, free_port, received, start_server_process, stop_process

from heimdal_tui.cli import analyze as analyze_cli
from heimdal_tui.cli.main import build_parser

SAMPLE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "home_lan_incidents.pcap"


def analyze(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        HEIMDAL_ASGARD_URL=url,
        HEIMDAL_ASGARD_API_KEY=API_KEY,
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
    )
    return subprocess.run(
        [sys.executable, "-m", "heimdal_tui", "analyze", str(SAMPLE), "--format", "jsonl", "--sync", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_sync_sends_the_alerts_and_devices_once(tmp_path: Path):
    proc, url = start_server_process(tmp_path / "asgard", "--lose-response-first", "1")
    try:
        first = analyze(tmp_path, url)
        again = analyze(tmp_path, url)
    finally:
        stop_process(proc)
    assert first.returncode == 0, first.stderr
    alerts = [json.loads(line) for line in first.stdout.splitlines()]
    wanted = [a for a in alerts if a["severity"] in ("medium", "high", "critical")]
    anomalies = received(tmp_path / "asgard")
    devices = received(tmp_path / "asgard", "devices.jsonl")
    assert len(anomalies) == len(wanted) > 5
    assert len(devices) >= 5
    line = next(x for x in first.stderr.splitlines() if x.startswith("asgard sync"))
    total = len(anomalies) + len(devices)
    assert line.startswith(f"asgard sync  sent {total}, retried ")
    assert int(line.split("retried ")[1].split(",")[0]) > 0  # the lost answer's batch went again
    assert ", dropped 0; 0 queued" in line
    # The same capture again: everything was delivered already, nothing goes twice.
    assert again.returncode == 0, again.stderr
    assert "asgard sync  sent 0, retried 0, dropped 0; 0 queued" in again.stderr
    assert len(received(tmp_path / "asgard")) == len(anomalies)


def test_sync_without_asgard_is_a_clear_error(tmp_path: Path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "d"), XDG_CONFIG_HOME=str(tmp_path / "c"))
    env.pop("HEIMDAL_ASGARD_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "heimdal_tui", "analyze", str(SAMPLE), "--sync"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert (
        "--sync: no Asgard URL: set [asgard] url in the configuration or HEIMDAL_ASGARD_URL" in result.stderr
    )


def test_sync_timeout_keeps_what_did_not_go(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    result = analyze(tmp_path, url, "--sync-timeout", "1", "--format", "none")
    assert result.returncode == 1
    assert "items still queued after 1 s" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_sync_timeout_is_named(tmp_path: Path):
    err = io.StringIO()
    args = build_parser().parse_args(["analyze", str(SAMPLE), "--sync", "--sync-timeout", "soon"])
    assert analyze_cli.run(args, stderr=err, stdout=io.StringIO()) == 2
    assert "--sync-timeout: 'soon' is not a duration" in err.getvalue()
