"""`heimdal-tui analyze`: summary, device output formats, and bad input handled with clear errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from scapy.all import BOOTP, DHCP, IP, TCP, UDP, Ether, Raw, wrpcap

from heimdal_tui.cli.main import main

PHONE = "f0:18:98:12:34:56"
ROUTER = "60:a4:b7:00:00:01"


def _capture(path: Path, count: int = 50) -> Path:
    packets = []
    dhcp = (
        Ether(src=PHONE, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(PHONE.replace(":", "")) + b"\0" * 10, xid=1)
        / DHCP(options=[("message-type", "request"), ("hostname", b"Annas-iPhone"), "end"])
    )
    dhcp.time = 1_700_000_000.0
    packets.append(dhcp)
    for i in range(count):
        p = (
            Ether(src=PHONE, dst=ROUTER)
            / IP(src="192.168.1.20", dst="17.253.144.10")
            / TCP(sport=50000 + i, dport=443, flags="S")
        )
        p.time = 1_700_000_001.0 + i
        packets.append(p)
    wrpcap(str(path), packets)
    return path


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_and_jsonl_devices(tmp_path, capsys):
    pcap = _capture(tmp_path / "a.pcap")
    out = tmp_path / "devices.jsonl"
    code, _stdout, err = _run(["analyze", str(pcap), "--devices-out", str(out)], capsys)
    assert code == 0
    assert "packets      51" in err and "devices      1" in err and "packets/s" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    for key in (
        "mac",
        "ips",
        "vendor",
        "hostname",
        "device_type",
        "first_seen",
        "last_seen",
        "packets_in",
        "packets_out",
        "bytes_in",
        "bytes_out",
        "peers",
    ):
        assert key in row
    assert row["mac"] == PHONE and row["hostname"] == "Annas-iPhone"
    assert row["vendor"] and "Apple" in row["vendor"]
    assert row["ips"] == ["192.168.1.20"] and row["packets_out"] == 51 and row["peers"] == 1
    assert row["first_seen"] == "2023-11-14T22:13:20.000Z"
    assert "tcp/443" in row["ports"]


def test_csv_and_parquet_outputs(tmp_path, capsys):
    pcap = _capture(tmp_path / "a.pcap")
    code, _, _ = _run(["analyze", "-q", str(pcap), "--devices-out", str(tmp_path / "d.csv")], capsys)
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    assert rows[0]["mac"] == PHONE and rows[0]["ips"] == "192.168.1.20"
    code, _, _ = _run(["analyze", "-q", str(pcap), "--devices-out", str(tmp_path / "d.parquet")], capsys)
    assert code == 0
    frame = pl.read_parquet(tmp_path / "d.parquet")
    assert frame["mac"].to_list() == [PHONE]


def test_unknown_output_format_is_refused(tmp_path, capsys):
    pcap = _capture(tmp_path / "a.pcap")
    code, _, err = _run(["analyze", str(pcap), "--devices-out", str(tmp_path / "d.xlsx")], capsys)
    assert code == 2 and "unknown format '.xlsx'" in err


def test_missing_corrupt_and_truncated_files(tmp_path, capsys):
    good = _capture(tmp_path / "good.pcap")
    truncated = tmp_path / "cut.pcap"
    truncated.write_bytes(good.read_bytes()[:-20])
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    code, _, err = _run(["analyze", str(tmp_path / "missing.pcap"), str(junk), str(truncated)], capsys)
    assert code == 0  # the truncated file was readable in part
    assert "missing.pcap" in err and "No such file" in err
    assert "junk.pcap: not a pcap or pcapng capture" in err
    assert "cut.pcap: file is truncated" in err
    assert "packets      50" in err
    code, _, err = _run(["analyze", str(junk)], capsys)
    assert code == 1 and "nothing was readable" in err


def test_malformed_packets_are_counted_not_fatal(tmp_path, capsys):
    pcap = tmp_path / "bad.pcap"
    good = (
        Ether(src=PHONE, dst=ROUTER)
        / IP(src="192.168.1.20", dst="1.1.1.1")
        / UDP(sport=1, dport=53)
        / Raw(b"\xff" * 5)
    )
    cut = Raw(bytes(good)[:20])  # cut inside the IPv4 header
    wrpcap(str(pcap), [good, cut, good])
    code, _, err = _run(["analyze", str(pcap)], capsys)
    assert code == 0
    assert "decode errors 1 (truncated IPv4 header: 1)" in err
    assert "payload errors 2" in err


def test_bad_local_net_is_named(tmp_path, capsys):
    pcap = _capture(tmp_path / "a.pcap")
    code, _, err = _run(["analyze", str(pcap), "--local-net", "10.0.0.0/33"], capsys)
    assert code == 2 and "10.0.0.0/33" in err


def test_installed_entry_point_runs(tmp_path):
    pcap = _capture(tmp_path / "a.pcap", count=3)
    result = subprocess.run(
        [sys.executable, "-m", "heimdal_tui", "analyze", str(pcap)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "packets      4" in result.stderr


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version(flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main([flag])
    assert exc.value.code == 0
