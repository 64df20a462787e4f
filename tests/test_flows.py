"""Flow tracking: synthetic timelines, and agreement with Zeek's conn.log and nDPI's flow list."""

from __future__ import annotations

import re

import polars as pl
from scapy.all import IP, TCP, UDP, Ether, Raw

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.decode.headers import decode_headers
from heimdal_tui.devices.locality import address_text
from heimdal_tui.flows.table import FlowTable, FlowTimeouts, handshake_completed

from .conftest import shared_pcap

A = "192.168.1.10"
B = "192.168.1.20"


def _frames(spec):
    """spec: (ts, src, dst, proto, sport, dport, flags, payload)."""
    frames = []
    for ts, src, dst, proto, sport, dport, flags, payload in spec:
        l4 = TCP(sport=sport, dport=dport, flags=flags) if proto == "tcp" else UDP(sport=sport, dport=dport)
        pkt = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src=src, dst=dst)
            / l4
            / Raw(b"x" * payload)
        )
        raw = bytes(pkt)
        frames.append((ts, raw, len(raw)))
    return frames


def _run(table: FlowTable, frames, batch_size=1000):
    started, ended = [], []
    for i in range(0, len(frames), batch_size):
        d = decode_headers(FrameBatch.from_frames(frames[i : i + batch_size]))
        new, done = table.update(d.to_frame())
        started.append(new)
        ended.append(done)
    ended.append(table.close_all())
    return pl.concat(started), pl.concat(ended)


def test_orig_is_the_first_sender_and_directions_are_counted():
    spec = [
        (1.0, A, B, "tcp", 40000, 22, "S", 0),
        (1.1, B, A, "tcp", 22, 40000, "SA", 0),
        (1.2, A, B, "tcp", 40000, 22, "A", 0),
        (1.3, A, B, "tcp", 40000, 22, "PA", 100),
        (1.4, B, A, "tcp", 22, 40000, "PA", 50),
    ]
    new, ended = _run(FlowTable(), _frames(spec))
    assert new.height == 1 and ended.height == 1
    row = ended.row(0, named=True)
    assert address_text(row["orig_hi"], row["orig_lo"]) == A and row["resp_p"] == 22
    assert (row["orig_pkts"], row["resp_pkts"], row["orig_bytes"], row["resp_bytes"]) == (3, 2, 100, 50)
    assert row["orig_ip_bytes"] == 40 * 3 + 100 and row["resp_ip_bytes"] == 40 * 2 + 50
    assert handshake_completed(ended).to_list() == [True]


def test_a_flow_split_across_batches_is_one_flow():
    spec = [(float(i), A, B, "udp", 5000, 53, "", 10) for i in range(0, 50)]
    spec += [(float(i) + 0.5, B, A, "udp", 53, 5000, "", 20) for i in range(0, 50)]
    spec.sort()
    _new, ended = _run(FlowTable(), _frames(spec), batch_size=7)
    assert ended.height == 1
    assert ended["orig_pkts"][0] == 50 and ended["resp_pkts"][0] == 50


def test_idle_timeout_starts_a_new_flow_inside_and_across_batches():
    spec = [(0.0, A, B, "udp", 123, 123, "", 48), (10.0, A, B, "udp", 123, 123, "", 48)]
    spec += [(100.0, A, B, "udp", 123, 123, "", 48), (300.0, A, B, "udp", 123, 123, "", 48)]
    for size in (1, 2, 10):
        _new, ended = _run(FlowTable(FlowTimeouts(udp=60.0)), _frames(spec), batch_size=size)
        assert sorted(ended["orig_pkts"].to_list()) == [1, 1, 2], size
        assert ended["uid"].n_unique() == 3


def test_closed_tcp_flows_end_and_port_reuse_starts_a_new_one():
    spec = [
        (0.0, A, B, "tcp", 40000, 80, "S", 0),
        (0.1, B, A, "tcp", 80, 40000, "R", 0),
        (20.0, A, B, "tcp", 40000, 80, "S", 0),
        (20.1, B, A, "tcp", 80, 40000, "SA", 0),
    ]
    _new, ended = _run(FlowTable(), _frames(spec), batch_size=2)
    assert ended.height == 2


def test_max_flows_evicts_the_least_recent():
    spec = [(i * 0.5, A, B, "udp", 10000 + i, 53, "", 0) for i in range(100)]  # all within the timeout
    table = FlowTable(max_flows=10)
    _run_frames = _frames(spec)
    d = decode_headers(FrameBatch.from_frames(_run_frames))
    _new, ended = table.update(d.to_frame())
    assert len(table) == 10 and ended.height == 90 and table.flows_evicted == 90


def _flows_of(path) -> pl.DataFrame:
    table = FlowTable()
    ended = []
    for batch in CaptureFile(str(path)).batches():
        ended.append(table.update(decode_headers(batch).to_frame())[1])
    ended.append(table.close_all())
    return pl.concat(ended)


def test_zeek_conn_log_of_wikipedia_pcap():
    """Every one of Zeek's 34 conn.log rows, with its packet and IP byte counts per direction."""
    path = shared_pcap("zeek/testing/btest/Traces/wikipedia.pcap")
    log = shared_pcap("zeek/testing/btest/Baseline/scripts.policy.protocols.conn.mac-logging/conn1.log")
    fields: list[str] = []
    expected = set()
    for line in log.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            r = dict(zip(fields, line.split("\t"), strict=False))
            expected.add(
                (
                    r["id.orig_h"],
                    int(r["id.orig_p"]),
                    r["id.resp_h"],
                    int(r["id.resp_p"]),
                    r["proto"],
                    int(r["orig_pkts"]),
                    int(r["orig_ip_bytes"]),
                    int(r["resp_pkts"]),
                    int(r["resp_ip_bytes"]),
                )
            )
    assert len(expected) == 34
    flows = _flows_of(path)
    names = {6: "tcp", 17: "udp", 1: "icmp"}
    got = {
        (
            address_text(r["orig_hi"], r["orig_lo"]),
            r["orig_p"],
            address_text(r["resp_hi"], r["resp_lo"]),
            r["resp_p"],
            names[r["proto"]],
            r["orig_pkts"],
            r["orig_ip_bytes"],
            r["resp_pkts"],
            r["resp_ip_bytes"],
        )
        for r in flows.iter_rows(named=True)
    }
    assert got == expected


def test_zeek_known_hosts_are_the_hosts_of_completed_handshakes():
    path = shared_pcap("zeek/testing/btest/Traces/wikipedia.pcap")
    log = shared_pcap(
        "zeek/testing/btest/Baseline/scripts.policy.protocols.conn.known-hosts/knownhosts-all.log"
    )
    expected = {line.split("\t")[1] for line in log.read_text().splitlines() if line and line[0] != "#"}
    flows = _flows_of(path).filter(handshake_completed(_flows_of(path)))
    hosts = {address_text(r["orig_hi"], r["orig_lo"]) for r in flows.iter_rows(named=True)}
    hosts |= {address_text(r["resp_hi"], r["resp_lo"]) for r in flows.iter_rows(named=True)}
    assert hosts == expected


_NDPI_FLOW = re.compile(
    r"^\t\d+\t(TCP|UDP) \[?([0-9a-f.:]+?)\]?:(\d+) (?:<->|->) \[?([0-9a-f.:]+?)\]?:(\d+) .*?"
    r"\[(\d+) pkts/\d+ bytes (?:<->|->) (\d+) pkts/\d+ bytes\]"
)


def _ndpi_flows(name: str):
    out = shared_pcap(f"ndpi/tests/cfgs/default/result/{name}.out")
    flows = set()
    for line in out.read_text().splitlines():
        m = _NDPI_FLOW.match(line)
        if m:
            proto, a, ap, b, bp, p1, p2 = m.groups()
            ends = tuple(sorted([(a, int(ap)), (b, int(bp))]))
            flows.add((proto.lower(), ends, int(p1) + int(p2)))
    return flows


def _our_flows(path):
    names = {6: "tcp", 17: "udp"}
    flows = _flows_of(path)
    return {
        (
            names.get(r["proto"], "other"),
            tuple(
                sorted(
                    [
                        (address_text(r["orig_hi"], r["orig_lo"]), r["orig_p"]),
                        (address_text(r["resp_hi"], r["resp_lo"]), r["resp_p"]),
                    ]
                )
            ),
            r["orig_pkts"] + r["resp_pkts"],
        )
        for r in flows.iter_rows(named=True)
        if r["proto"] in names
    }


def test_ndpi_flows_of_telegram_pcap():
    """nDPI's 48 flows of telegram.pcap: same endpoints and packet counts."""
    path = shared_pcap("ndpi/tests/cfgs/default/pcap/telegram.pcap")
    expected = _ndpi_flows("telegram.pcap")
    assert len(expected) == 48
    assert _our_flows(path) == expected


def test_ndpi_flows_of_synscan_pcap():
    """nDPI counts 1994 flows in a SYN scan of one host: one per probed port."""
    path = shared_pcap("ndpi/tests/cfgs/default/pcap/synscan.pcap")
    expected = _ndpi_flows("synscan.pcap")
    assert len(expected) == 1994
    assert _our_flows(path) == expected
