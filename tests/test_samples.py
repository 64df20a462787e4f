"""The seeded scenario generator (heimdal_tui.samples) and the captures committed in sample_pcaps/.

The committed files must equal a fresh generation byte for byte, the truth files must describe
them, and every incident must be visible in the raw frames (read back with scapy).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import statistics
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import DHCP
from scapy.layers.dns import DNS
from scapy.layers.l2 import ARP, Ether
from scapy.utils import RawPcapReader

from heimdal_tui.samples import home_lan
from heimdal_tui.samples.cli import generate_all, main
from heimdal_tui.samples.scenario import GENERATOR, INCIDENT_KINDS

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_pcaps"
SCENARIOS = ("home_lan_incidents", "home_lan_benign")
OUTPUTS = tuple(f"{name}{ext}" for name in SCENARIOS for ext in (".pcap", ".truth.json"))
MAX_BYTES = 4_000_000
ROUTER_MAC = home_lan.ROUTER.mac


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------
# A minimal frame parser for the bulk checks (scapy dissects the frames that matter)


@dataclass(frozen=True)
class Frame:
    ts: float
    data: bytes
    wirelen: int
    src_mac: str
    dst_mac: str
    ethertype: int
    src: str = ""
    dst: str = ""
    proto: int = 0
    sport: int = 0
    dport: int = 0
    flags: int = 0  # TCP flags

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.wirelen


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def parse(ts: float, data: bytes, wirelen: int) -> Frame:
    ethertype = struct.unpack_from("!H", data, 12)[0]
    src_mac, dst_mac = _mac(data[6:12]), _mac(data[0:6])
    if ethertype != 0x0800:
        return Frame(ts, data, wirelen, src_mac, dst_mac, ethertype)
    ihl = (data[14] & 0x0F) * 4
    proto = data[23]
    l4 = 14 + ihl
    sport = dport = flags = 0
    if proto in (6, 17):
        sport, dport = struct.unpack_from("!HH", data, l4)
        if proto == 6:
            flags = data[l4 + 13]
    src, dst = _ip(data[26:30]), _ip(data[30:34])
    return Frame(ts, data, wirelen, src_mac, dst_mac, ethertype, src, dst, proto, sport, dport, flags)


@cache
def frames(name: str) -> tuple[Frame, ...]:
    path = SAMPLES / f"{name}.pcap"
    out = []
    for data, meta in RawPcapReader(str(path)):
        out.append(parse(meta.sec + meta.usec / 1e6, data, meta.wirelen))
    return tuple(out)


@cache
def truth(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.truth.json").read_text())


def incident(kind: str) -> dict[str, Any]:
    (found,) = [i for i in truth("home_lan_incidents")["incidents"] if i["kind"] == kind]
    return found


def window(kind: str) -> list[Frame]:
    inc = incident(kind)
    return [f for f in frames("home_lan_incidents") if inc["start_ts"] <= f.ts <= inc["end_ts"]]


SYN, ACK, RST, FIN = 0x02, 0x10, 0x04, 0x01


def checksum(data: bytes) -> int:
    """RFC 1071, the slow obvious way (independent of the generator's implementation)."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


# ------------------------------------------------------------------------------------------------
# Generation


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    written = generate_all(str(out))
    assert sorted(Path(p).name for p in written) == sorted(OUTPUTS)
    return out


def test_generation_is_deterministic(generated: Path, tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--quiet"]) == 0
    for name in OUTPUTS:
        assert sha256(tmp_path / name) == sha256(generated / name), name


def test_committed_files_equal_a_fresh_generation(generated: Path) -> None:
    for name in OUTPUTS:
        committed = SAMPLES / name
        assert committed.exists(), (
            f"{committed} missing: run python -m heimdal_tui.samples --out sample_pcaps"
        )
        assert sha256(committed) == sha256(generated / name), (
            f"{name} differs from a fresh generation: run python -m heimdal_tui.samples --out sample_pcaps"
        )


def test_another_seed_gives_another_capture() -> None:
    a = home_lan.generate(home_lan.DEFAULT_SEED, incidents=False)
    b = home_lan.generate(home_lan.DEFAULT_SEED + 1, incidents=False)
    assert [r[2] for r in a.log.sorted()[:200]] != [r[2] for r in b.log.sorted()[:200]]


def test_benign_capture_is_the_incident_capture_without_its_incidents() -> None:
    with_incidents = home_lan.generate()
    benign = home_lan.generate(incidents=False)
    kept = [(t, f, w) for t, _, f, w, tag in with_incidents.log.sorted() if not tag]
    assert kept == [(t, f, w) for t, _, f, w, _ in benign.log.sorted()]


def test_shorter_capture_keeps_every_incident_inside_it() -> None:
    run = home_lan.generate(duration_s=home_lan.MIN_DURATION_S)
    assert sorted(i.kind for i in run.incidents) == sorted(INCIDENT_KINDS)
    tl = run.timeline
    for inc in run.incidents:
        assert tl.learning_end_us <= inc.start_us <= inc.end_us < tl.capture_end_us


def test_cli_rejects_a_capture_shorter_than_30_minutes(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--duration", "600", "--quiet"])


# ------------------------------------------------------------------------------------------------
# Files, truth documents


@pytest.mark.parametrize("name", SCENARIOS)
def test_pcap_format_size_and_span(name: str) -> None:
    path = SAMPLES / f"{name}.pcap"
    head = path.read_bytes()[:24]
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", head)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert path.stat().st_size < MAX_BYTES
    doc = truth(name)
    fs = frames(name)
    assert len(fs) == doc["packets"]
    assert 10_000 <= len(fs) <= 60_000
    times = [f.ts for f in fs]
    assert times == sorted(times)
    assert doc["capture_start_ts"] <= times[0] and times[-1] < doc["capture_end_ts"]
    assert doc["capture_end_ts"] - doc["capture_start_ts"] >= 30 * 60
    assert times[-1] - times[0] >= 30 * 60 - 5
    # bulk frames are truncated, but keep their real length on the wire
    assert max(f.wirelen for f in fs) == 1514
    assert any(f.truncated and f.wirelen == 1514 for f in fs)
    assert sum(f.wirelen for f in fs) > 5 * path.stat().st_size


def test_all_committed_samples_stay_under_4_mb() -> None:
    total = sum(p.stat().st_size for p in SAMPLES.iterdir() if p.is_file())
    assert total < MAX_BYTES


def _parse_iso(text: str) -> float:
    assert text.endswith("Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("name", SCENARIOS)
def test_truth_document(name: str) -> None:
    doc = truth(name)
    assert doc["scenario"] == name
    assert doc["generator"] == GENERATOR == "heimdal_tui.samples"
    assert doc["seed"] == home_lan.DEFAULT_SEED
    assert doc["pcap"] == f"{name}.pcap"
    assert doc["pcap_sha256"] == sha256(SAMPLES / doc["pcap"])
    for key in ("capture_start", "capture_end", "learning_end"):
        assert _parse_iso(doc[key]) == pytest.approx(doc[f"{key}_ts"], abs=1e-6)
    assert doc["capture_start_ts"] < doc["learning_end_ts"] < doc["capture_end_ts"]
    devices = {d["name"]: d for d in doc["devices"]}
    assert len(devices) == 9
    for d in doc["devices"]:
        assert set(d) >= {"name", "mac", "ip", "vendor", "type", "hostname"}
    if name == "home_lan_benign":
        assert doc["incidents"] == []
        return
    kinds = [i["kind"] for i in doc["incidents"]]
    assert sorted(kinds) == sorted(INCIDENT_KINDS)
    for inc in doc["incidents"]:
        assert inc["kind"] in INCIDENT_KINDS
        dev = devices[inc["device"]["name"]]
        assert inc["device"] == {"name": dev["name"], "mac": dev["mac"], "ip": dev["ip"]}
        assert _parse_iso(inc["start"]) == pytest.approx(inc["start_ts"], abs=1e-6)
        assert _parse_iso(inc["end"]) == pytest.approx(inc["end_ts"], abs=1e-6)
        assert doc["learning_end_ts"] <= inc["start_ts"] < inc["end_ts"] < doc["capture_end_ts"]
        assert inc["description"]
        assert inc["peer"] is None or isinstance(inc["peer"], str)
        assert inc["packets"] > 0


def test_learning_stretch_is_benign() -> None:
    doc = truth("home_lan_incidents")
    learning = [f for f in frames("home_lan_incidents") if f.ts < doc["learning_end_ts"]]
    benign = [f for f in frames("home_lan_benign") if f.ts < doc["learning_end_ts"]]
    assert [(f.ts, f.data) for f in learning] == [(f.ts, f.data) for f in benign]


# ------------------------------------------------------------------------------------------------
# Devices


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_device_mac_sends_frames(name: str) -> None:
    sources = {f.src_mac for f in frames(name)}
    for d in truth(name)["devices"]:
        assert d["mac"] in sources, d["name"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_client_sends_dhcp_with_its_hostname(name: str) -> None:
    hostnames: dict[str, set[str]] = defaultdict(set)
    vendor_classes: dict[str, set[str]] = defaultdict(set)
    server_types: set[int] = set()
    for f in frames(name):
        if f.proto != 17 or {f.sport, f.dport} != {67, 68}:
            continue
        pkt = Ether(f.data)
        opts = {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple)}
        if f.sport == 67:
            assert f.src_mac == ROUTER_MAC and f.src == "192.168.1.1"
            server_types.add(opts["message-type"])
            continue
        if "hostname" in opts:
            hostnames[f.src_mac].add(opts["hostname"].decode())
        if "vendor_class_id" in opts:
            vendor_classes[f.src_mac].add(opts["vendor_class_id"].decode())
    assert server_types >= {2, 5}  # OFFER and ACK from the router
    for d in truth(name)["devices"]:
        if d["type"] == "router":
            continue
        assert hostnames[d["mac"]] == {d["hostname"]}, d["name"]
        if d["dhcp_vendor_class"]:
            assert vendor_classes[d["mac"]] == {d["dhcp_vendor_class"]}, d["name"]


def test_device_macs_match_their_vendor_oui() -> None:
    netaddr = pytest.importorskip("netaddr")
    for d in truth("home_lan_benign")["devices"]:
        first = int(d["mac"][:2], 16)
        assert not first & 0x01, d["name"]  # unicast
        if d["mac_randomized"]:
            assert first & 0x02 and d["oui_vendor"] is None, d["name"]  # locally administered
            continue
        assert not first & 0x02, d["name"]
        org = netaddr.EUI(d["mac"]).oui.registration().org
        assert org == d["oui_vendor"], d["name"]


def test_public_addresses_belong_to_the_stated_countries() -> None:
    iptocc = pytest.importorskip("iptocc")
    for domain in home_lan.DOMAINS.values():
        assert iptocc.country_code(domain.ipv4) == domain.country, domain.name
    for inc in truth("home_lan_incidents")["incidents"]:
        if inc["peer_country"]:
            assert iptocc.country_code(inc["peer_ip"]) == inc["peer_country"], inc["id"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_ip_and_l4_checksums(name: str) -> None:
    checked = 0
    for f in frames(name)[::7]:
        if f.ethertype != 0x0800:
            continue
        ihl = (f.data[14] & 0x0F) * 4
        assert checksum(f.data[14 : 14 + ihl]) == 0xFFFF
        total = struct.unpack_from("!H", f.data, 16)[0]
        if f.truncated or f.proto not in (6, 17):
            continue
        segment = f.data[14 + ihl : 14 + total]
        pseudo = f.data[26:34] + struct.pack("!BBH", 0, f.proto, len(segment))
        assert checksum(pseudo + segment) == 0xFFFF
        checked += 1
    assert checked > 500


def test_mdns_ssdp_and_netbios_announcements() -> None:
    fs = frames("home_lan_benign")
    mdns_names: set[str] = set()
    for f in fs:
        if f.proto == 17 and f.dport == 5353 and f.dst == "224.0.0.251":
            dns = Ether(f.data)[DNS]
            for rr in list(dns.an or []) + list(dns.ar or []):
                mdns_names.add(rr.rrname.decode().rstrip("."))
    assert "Annas-iPhone._companion-link._tcp.local" in mdns_names
    assert any(n.endswith("._ipp._tcp.local") for n in mdns_names)
    assert any(n.endswith("._printer._tcp.local") for n in mdns_names)
    assert any(n.endswith("._airplay._tcp.local") for n in mdns_names)
    assert "DiskStation._smb._tcp.local" in mdns_names
    ssdp = [f for f in fs if f.proto == 17 and f.dport == 1900 and f.src == home_lan.TV.ip]
    assert ssdp and all(b"SERVER: " in f.data and f.data[42:48] == b"NOTIFY" for f in ssdp)
    nbns = [f for f in fs if f.proto == 17 and f.dport == 137 and f.src == home_lan.LAPTOP.ip]
    assert any(struct.unpack_from("!H", f.data, 44)[0] >> 11 & 0xF == 5 for f in nbns)  # registration


# ------------------------------------------------------------------------------------------------
# Incidents, as seen in the raw frames


def test_port_scan_is_visible() -> None:
    inc = incident("port_scan")
    dev = inc["device"]
    syns = [f for f in window("port_scan") if f.src == dev["ip"] and f.proto == 6 and f.flags == SYN]
    ports_by_host: dict[str, set[int]] = defaultdict(set)
    for f in syns:
        ports_by_host[f.dst].add(f.dport)
    target, ports = max(ports_by_host.items(), key=lambda kv: len(kv[1]))
    assert target == inc["peer_ip"]
    assert len(ports) > 100
    assert len(ports_by_host) >= 5  # and a sweep of port 23 across hosts
    resets = [f for f in window("port_scan") if f.src == target and f.dst == dev["ip"] and f.flags & RST]
    assert len(resets) > 100


def test_arp_spoof_is_visible() -> None:
    inc = incident("arp_spoof")
    forged = []
    for f in window("arp_spoof"):
        if f.ethertype != 0x0806:
            continue
        arp = Ether(f.data)[ARP]
        if arp.op == 2 and arp.psrc == "192.168.1.1" and arp.hwsrc != ROUTER_MAC:
            forged.append(arp)
    assert len(forged) >= 30
    assert {a.hwsrc for a in forged} == {inc["device"]["mac"]}
    # ...and nothing of the kind in the benign capture
    for f in frames("home_lan_benign"):
        if f.ethertype == 0x0806:
            arp = Ether(f.data)[ARP]
            assert arp.psrc != "192.168.1.1" or arp.hwsrc == ROUTER_MAC


def _dns_queries(name: str, ip: str) -> list[tuple[str, int]]:
    out = []
    for f in frames(name):
        if f.proto == 17 and f.dport == 53 and f.src == ip:
            q = Ether(f.data)[DNS].qd[0]
            out.append((q.qname.decode().rstrip("."), q.qtype))
    return out


def test_dns_tunnel_is_visible() -> None:
    inc = incident("dns_tunnel")
    dev = inc["device"]
    queries = []
    for f in window("dns_tunnel"):
        if f.proto == 17 and f.dport == 53 and f.src == dev["ip"]:
            q = Ether(f.data)[DNS].qd[0]
            queries.append((q.qname.decode().rstrip("."), q.qtype))
    tunnel = [(n, t) for n, t in queries if n.endswith("." + inc["peer_domain"])]
    assert len({n for n, _ in tunnel}) >= 100
    assert all(max(len(label) for label in n.split(".")) > 30 for n, _ in tunnel)
    assert Counter(t for _, t in tunnel)[16] > len(tunnel) / 2  # mostly TXT

    def entropy(text: str) -> float:
        counts = Counter(text)
        return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())

    assert statistics.mean(entropy(n.split(".")[0]) for n, _ in tunnel) > 4.0
    # the laptop's normal lookups have short labels
    normal = _dns_queries("home_lan_benign", dev["ip"])
    assert normal and all(max(len(label) for label in n.split(".")) <= 30 for n, _ in normal)


def test_beaconing_is_visible() -> None:
    inc = incident("beaconing")
    dev = inc["device"]
    syn_times = [
        f.ts
        for f in frames("home_lan_incidents")
        if f.src == dev["ip"] and f.dst == inc["peer_ip"] and f.proto == 6 and f.flags == SYN
    ]
    assert len(syn_times) >= 10
    assert syn_times[0] >= inc["start_ts"]
    gaps = [b - a for a, b in itertools.pairwise(syn_times)]
    assert 57 < statistics.mean(gaps) < 63
    assert statistics.pstdev(gaps) < 3


def test_brute_force_is_visible() -> None:
    inc = incident("brute_force")
    dev = inc["device"]
    conns: dict[int, list[Frame]] = defaultdict(list)
    for f in window("brute_force"):
        if f.proto != 6:
            continue
        if f.src == dev["ip"] and f.dst == inc["peer_ip"] and f.dport == 22:
            conns[f.sport].append(f)
        elif f.src == inc["peer_ip"] and f.dst == dev["ip"] and f.sport == 22:
            conns[f.dport].append(f)
    assert len(conns) >= 30
    for packets in conns.values():
        assert packets[0].flags == SYN
        assert len(packets) < 40
        assert any(f.flags & (FIN | RST) for f in packets)
    banners = [f.data for ps in conns.values() for f in ps if b"SSH-2.0-" in f.data]
    assert banners


def test_volume_spike_is_visible() -> None:
    inc = incident("volume_spike")
    dev = inc["device"]
    doc = truth("home_lan_incidents")
    spike = sum(f.wirelen for f in window("volume_spike") if f.src == dev["ip"] and f.dst == inc["peer_ip"])
    span = inc["end_ts"] - inc["start_ts"]
    # the device's busiest upload over the same span during learning
    per_bucket: Counter[int] = Counter()
    for f in frames("home_lan_incidents"):
        if f.src == dev["ip"] and not f.dst.startswith("192.168.1.") and f.ts < doc["learning_end_ts"]:
            per_bucket[int((f.ts - doc["capture_start_ts"]) // span)] += f.wirelen
    assert spike > 1_000_000
    assert spike > 10 * max(per_bucket.values())
    assert all(f.dst != inc["peer_ip"] for f in frames("home_lan_benign"))


def test_geo_violation_is_visible() -> None:
    iptocc = pytest.importorskip("iptocc")
    inc = incident("geo_violation")
    dev = inc["device"]
    before: set[str] = set()
    during = False
    for f in frames("home_lan_incidents"):
        if f.ethertype != 0x0800 or dev["ip"] not in (f.src, f.dst):
            continue
        peer = f.dst if f.src == dev["ip"] else f.src
        if peer.startswith(("192.168.", "224.", "239.", "255.")):
            continue
        if f.ts < inc["start_ts"]:
            before.add(iptocc.country_code(peer))
        elif peer == inc["peer_ip"] and f.ts <= inc["end_ts"]:
            during = True
    assert during
    assert iptocc.country_code(inc["peer_ip"]) == inc["peer_country"]
    assert before and inc["peer_country"] not in before
    assert inc["details"]["previous_countries"] == sorted(before)


def test_project_reader_reads_the_samples() -> None:
    from heimdal_tui.capture.pcap_file import CaptureFile

    for name in SCENARIOS:
        cf = CaptureFile(str(SAMPLES / f"{name}.pcap"))
        batches = list(cf.batches())
        assert cf.warnings == []
        assert sum(len(b) for b in batches) == truth(name)["packets"]
        assert sum(b.wire_bytes for b in batches) == sum(f.wirelen for f in frames(name))
