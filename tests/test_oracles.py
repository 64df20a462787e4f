"""The pipeline against what Zeek, nDPI and Suricata report for the same real captures.

Each test reads a capture from ../shared/pcaps and checks our devices, names and parsed messages
against that tool's expected output (see ../shared/pcaps/ORACLES.tsv); skipped when ../shared is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.decode.app.dns import DnsMessage
from heimdal_tui.decode.app.http import HttpRequest
from heimdal_tui.decode.app.tls import TlsClientHello
from heimdal_tui.decode.app_select import AppEvent
from heimdal_tui.devices.locality import DEFAULT_LOCAL_NETWORKS, address_pair, mac_text, mac_value
from heimdal_tui.devices.snapshot import snapshot
from heimdal_tui.devices.table import DeviceLimits
from heimdal_tui.pipeline.engine import Pipeline, PipelineSettings

from .conftest import shared_pcap


def _run(path: Path, local: tuple[str, ...] = DEFAULT_LOCAL_NETWORKS) -> tuple[Pipeline, list[AppEvent]]:
    settings = PipelineSettings(local_networks=local, device_limits=DeviceLimits(idle_timeout=float("inf")))
    pipeline = Pipeline(settings)
    events: list[AppEvent] = []
    for batch in CaptureFile(str(path)).batches():
        events += pipeline.feed(batch).app_events
    pipeline.finish()
    return pipeline, events


def _devices(pipeline: Pipeline) -> dict[str, dict]:
    return {d["mac"]: d for d in snapshot(pipeline.devices, pipeline.directory)}


def _names(pipeline: Pipeline, mac: str, kind: str) -> set[str]:
    frame = pipeline.devices.names.filter((pl.col("device") == mac_value(mac)) & (pl.col("kind") == kind))
    return set(frame["name"].to_list())


def test_zeek_dhcp_mac_and_hostname():
    """Zeek dhcp.log: MAC 90:b1:1c:99:49:29 is btest.is.cool and was assigned 128.2.6.189."""
    pipeline, _ = _run(shared_pcap("zeek/testing/btest/Traces/dhcp/dhcp.pcap"))
    device = _devices(pipeline)["90:b1:1c:99:49:29"]
    assert device["hostname"] == "btest.is.cool" and device["hostname_source"] == "dhcp"
    ident = pipeline.directory.identities[mac_value("90:b1:1c:99:49:29")]
    assert "128.2.6.189" in ident.dhcp_ips


def test_zeek_ssl_log_sni():
    """Zeek ssl.log: 192.168.1.105 asked 74.125.224.79:443 for ssl.gstatic.com."""
    pipeline, events = _run(shared_pcap("zeek/testing/btest/Traces/tls/tls-conn-with-extensions.pcap"))
    hellos = [e for e in events if isinstance(e.message, TlsClientHello)]
    assert [h.message.sni for h in hellos if isinstance(h.message, TlsClientHello)] == ["ssl.gstatic.com"]
    assert (hellos[0].dst_hi, hellos[0].dst_lo) == address_pair("74.125.224.79")
    assert (hellos[0].src_hi, hellos[0].src_lo) == address_pair("192.168.1.105")
    assert pipeline.directory.peer_names[address_pair("74.125.224.79")] == "ssl.gstatic.com"


def test_zeek_mdns_names():
    """Zeek dns.log for mdns-no-assoc: 192.168.0.2 answers for unrelated-reply-a.local."""
    pipeline, events = _run(shared_pcap("zeek/testing/btest/Traces/dns/mdns-no-assoc.pcap"))
    queries = {q for e in events if isinstance(e.message, DnsMessage) for q, _ in e.message.questions}
    assert {"initial-query-a.local", "initial-query-aaaa.local", "v6-initial.local"} <= queries
    answers = {r.name for e in events if isinstance(e.message, DnsMessage) for r in e.message.answers}
    assert {"unrelated-reply-a.local", "unrelated-reply-aaaa.local", "v6-unrelated.local"} <= answers
    # One host (one MAC) answers for all three names; its hostname is the one it announced last.
    hostnames = {d["hostname"] for d in _devices(pipeline).values()}
    assert hostnames == {"v6-unrelated"}


def test_suricata_mdns_device_info_name():
    """Suricata mdns test: the iMac announces "John’s iMac._device-info._tcp.local" (UTF-8)."""
    _, events = _run(shared_pcap("suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-9/frag-9.pcap"))
    names = {r.name for e in events if isinstance(e.message, DnsMessage) for r in e.message.answers}
    names |= {r.name for e in events if isinstance(e.message, DnsMessage) for r in e.message.additionals}
    assert "John’s iMac._device-info._tcp.local" in names


def test_suricata_ethernet_eve_per_mac_counts():
    """Suricata ethernet-eve: 5 DNS requests from d8:cb:8a:ed:a1:46 (10.16.1.11), 5 responses to it
    from 00:15:17:0d:06:f7; TLS from 192.168.56.1 (0a:00:27:00:00:00); 1 HTTP from 192.168.118.10."""
    pipeline, events = _run(shared_pcap("suricata-verify/tests/ethernet-eve/test.pcap"))
    dns = [(e, e.message) for e in events if isinstance(e.message, DnsMessage)]
    requests = [e for e, m in dns if not m.is_response and mac_text(e.src_mac) == "d8:cb:8a:ed:a1:46"]
    responses = [e for e, m in dns if m.is_response and mac_text(e.src_mac) == "00:15:17:0d:06:f7"]
    assert len(requests) == 5 and len(responses) == 5
    assert all((e.dst_hi, e.dst_lo) == address_pair("10.16.1.11") for e in responses)
    devices = _devices(pipeline)
    client = devices["d8:cb:8a:ed:a1:46"]
    assert client["ips"] == ["10.16.1.11"] and client["packets_out"] == 5 and client["packets_in"] == 5
    tls = [e for e in events if isinstance(e.message, TlsClientHello)]
    assert tls and {mac_text(e.src_mac) for e in tls} == {"0a:00:27:00:00:00"}
    http = [e for e in events if isinstance(e.message, HttpRequest)]
    assert len(http) == 1 and (http[0].src_hi, http[0].src_lo) == address_pair("192.168.118.10")


_NDPI_HOST = re.compile(r"^\t\d+\tUDP ([0-9.]+):(\d+) <?-> ([0-9.]+):(\d+) .*?\[Hostname/SNI: ([^\]]+)\]")


def test_ndpi_hostnames_of_telegram_pcap():
    """nDPI's per-flow Hostname/SNI: DNS query names of 192.168.1.77, DHCP hostname tl-sg116e."""
    path = shared_pcap("ndpi/tests/cfgs/default/pcap/telegram.pcap")
    out = shared_pcap("ndpi/tests/cfgs/default/result/telegram.pcap.out")
    dns_names: set[str] = set()
    dhcp_names: set[str] = set()
    for line in out.read_text().splitlines():
        m = _NDPI_HOST.match(line)
        if not m:
            continue
        src, _sport, _dst, dport, host = m.groups()
        if dport == "53" and src == "192.168.1.77":
            dns_names.add(host)
        elif dport == "67":
            dhcp_names.add(host)
    assert len(dns_names) >= 8 and dhcp_names == {"tl-sg116e"}
    pipeline, _ = _run(path)
    devices = _devices(pipeline)
    mac77 = next(m for m, d in devices.items() if "192.168.1.77" in d["ips"])
    assert _names(pipeline, mac77, "dns") == dns_names
    # nDPI names the DHCP option-12 host; we also read the client FQDN option (81) of another client.
    assert dhcp_names <= {d["hostname"].lower() for d in devices.values() if d["hostname_source"] == "dhcp"}


def test_zeek_known_hosts_local_devices():
    """Zeek known-hosts with Site::local_nets=141.142.0.0/16: the one local host is 141.142.220.118;
    as a device it holds that address and reached the three remote known hosts over HTTP."""
    pipeline, _ = _run(shared_pcap("zeek/testing/btest/Traces/wikipedia.pcap"), ("141.142.0.0/16",))
    devices = _devices(pipeline)
    host = next(d for d in devices.values() if "141.142.220.118" in d["ips"])
    peers = {p["ip"] for p in host["top_peers"]}
    assert {"208.80.152.118", "208.80.152.3", "208.80.152.2"} <= peers
    assert "tcp/80" in host["ports"] and "udp/53" in host["ports"]
    assert all(not ip.startswith("208.") for d in devices.values() for ip in d["ips"])
