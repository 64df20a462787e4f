"""The anonymizer: what each kind of input becomes, on hand-made inputs, on every alert and device of
the sample home LAN, and (hypothesis) on hostile inputs: no raw IP, MAC, hostname or DNS name from
any input appears anywhere in a serialized payload."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from asgard_support import device_row, make_alert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heimdal_tui.asgard.anonymizer import Anonymizer
from heimdal_tui.asgard.queue import envelope
from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.devices.snapshot import snapshot
from heimdal_tui.pipeline.engine import Pipeline

SECRET = bytes(range(32))
SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def strings_in(value: Any) -> list[str]:
    """Every string (keys too) anywhere in a parsed JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings_in(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def numbers_in(value: Any) -> list[int | float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    return []


def serialized(data: dict[str, Any]) -> Any:
    """The payload as it leaves (the queue's envelope), parsed back."""
    return json.loads(envelope("k", "anomaly", 0.0, data))


def ip_forms(text: str) -> set[str]:
    addr = ipaddress.ip_address(text)
    forms = {str(addr), text}
    if isinstance(addr, ipaddress.IPv6Address):
        forms.add(addr.exploded)
        if addr.ipv4_mapped is not None:
            forms.add(str(addr.ipv4_mapped))
    return forms


def mac_forms(mac: int) -> set[str]:
    raw = mac.to_bytes(6, "big")
    return {":".join(f"{b:02x}" for b in raw), "-".join(f"{b:02x}" for b in raw), raw.hex()}


def assert_absent(payload: Any, forbidden: set[str], numbers: Collection[int] = frozenset()) -> None:
    texts = strings_in(payload)
    for token in forbidden:
        lowered = token.lower()
        leaks = [t for t in texts if lowered in t.lower()]
        assert not leaks, f"{token!r} leaked into {leaks[:3]}"
    for number in numbers:
        assert number not in numbers_in(payload), f"{number} leaked as a number"


# -- what each input becomes -------------------------------------------------------------------------
def test_addresses_become_countries_or_keyed_prefixes():
    anon = Anonymizer(SECRET)
    assert anon.ip("8.8.8.8") == "geo:US"
    assert anon.ip("::ffff:8.8.8.8") == "geo:US"
    lan_a, lan_b, other = anon.ip("192.168.1.20"), anon.ip("192.168.1.77"), anon.ip("192.168.2.20")
    assert lan_a == lan_b != other  # one token per /24: devices of one LAN share it
    assert lan_a is not None and lan_a.startswith("net:") and lan_a.endswith("/24")
    assert (anon.ip("fe80::1") or "").endswith("/64")
    assert Anonymizer(bytes(32)).ip("192.168.1.20") != lan_a  # another sensor, another secret
    assert anon.ip("127.0.0.1") == "scope:loopback"
    assert anon.ip("224.0.0.251") == "scope:multicast"
    assert anon.ip("203.0.113.9") == "scope:reserved"  # documentation range
    assert anon.ip("not an address") is None
    assert Anonymizer(SECRET, ip_detail="region").ip("8.8.8.8") == "region:north_america"


def test_macs_become_pseudonyms_beside_a_device_type_fingerprint():
    anon = Anonymizer(SECRET)
    assert anon.mac("00:11:22:33:44:55") == anon.mac("00-11-22-33-44-55") != anon.mac("00:11:22:33:44:56")
    print_fp = anon.fingerprint("3c:2a:f4:00:00:01", "printer", 0.9)
    assert print_fp == {
        "type": "printer",
        "vendor": "Brother Industries, LTD.",
        "randomized_mac": False,
        "type_confidence": 0.9,
    }
    randomized = anon.fingerprint("da:a1:19:00:00:01", "phone")
    assert randomized["randomized_mac"] is True and randomized["vendor"] is None
    assert anon.fingerprint("3c:2a:f4:00:00:01", "<b>evil</b>")["type"] == "unknown"


def test_names_keep_only_the_registered_domain_of_external_names():
    anon = Anonymizer(SECRET)
    assert anon.text("cdn.tracker.example.com") == "example.com"
    assert anon.text("www.bbc.co.uk") == "bbc.co.uk"
    for local in ("nas-office", "printer.local", "tv.lan", "router.home.arpa", "4.3.2.1.in-addr.arpa"):
        assert anon.text(local) is None, local
    assert anon.text("evil\\x1b[31m.example.com") is None  # escaped control characters: dropped
    dropping = Anonymizer(SECRET, names="drop")
    assert dropping.text("cdn.tracker.example.com") is None
    assert dropping.device(device_row())["top_peers"][0]["domain"] is None


def test_alert_payload_keeps_the_behaviour_and_loses_the_identities():
    anon = Anonymizer(SECRET)
    alert = make_alert(
        evidence={
            "scanner": "192.168.1.70 (24:0a:c4:3a:7f:21)",
            "example_ports": ["tcp/22", "tcp/80"],
            "probe_types": {"syn": 40, "nas-office": 2},
            "examples": ["142.250.185.78 (www.youtube.com)", "tcp/22 (peer 192.168.1.10)"],
            "hostname": "nas-office.example.com",
            "baseline_profile": "nas@3",
            "user_agent": "Mozilla/5.0 (secret build 1234)",
            "window_s": 60.0,
        }
    )
    data = anon.alert(alert)
    assert data["kind"] == "port_scan" and data["severity"] == "high" and data["count"] == 3
    assert data["device"]["type"] == "nas" and data["device"]["pseudonym"].startswith("dev:")
    assert data["peer"] == "scope:reserved"
    evidence = data["evidence"]
    assert evidence["example_ports"] == ["tcp/22", "tcp/80"]
    assert evidence["probe_types"] == {"syn": 40}
    assert evidence["baseline_profile"] == "nas@3"
    assert evidence["examples"][0] == "geo:US (youtube.com)"
    assert evidence["examples"][1].startswith("tcp/22 (peer net:")
    assert "hostname" not in evidence and "user_agent" not in evidence
    assert "summary" not in data
    assert_absent(
        serialized(data),
        {
            "192.168.1.70",
            "24:0a:c4:3a:7f:21",
            "nas-office",
            "www.youtube.com",
            "Mozilla",
            "00:11:22:33:44:55",
        },
    )


@pytest.fixture(scope="module")
def home_lan() -> tuple[list[Any], list[dict[str, Any]]]:
    pipeline = Pipeline()
    engine = DetectionEngine(pipeline, DetectionSettings(learning=LearningSettings(learning_period=1200.0)))
    for batch in CaptureFile(str(SAMPLES / "home_lan_incidents.pcap")).batches():
        engine.process(pipeline.feed(batch))
    engine.finish()
    return list(engine.alerts.alerts.values()), snapshot(pipeline.devices, pipeline.directory)


def test_every_alert_and_device_of_the_sample_lan_is_anonymized(home_lan):
    alerts, devices = home_lan
    assert len(alerts) >= 10 and len(devices) >= 5
    forbidden: set[str] = set()
    macs: set[int] = set()
    for row in devices:
        forbidden |= {ip for ip in row["ips"]} | {p["ip"] for p in row["top_peers"]}
        forbidden |= {row["mac"]} if row["mac"] else set()
        forbidden |= {row["hostname"]} if row["hostname"] and len(row["hostname"]) > 3 else set()
        forbidden |= {p["name"] for p in row["top_peers"] if p["name"] and p["name"].count(".") >= 2}
        macs.add(row["device"])
    anon = Anonymizer(SECRET)
    kinds = set()
    for alert in alerts:
        payload = serialized(anon.alert(alert))
        kinds.add(payload["data"]["kind"])
        assert_absent(payload, forbidden, macs)
        assert payload["data"]["evidence"], f"{alert.kind} lost all its evidence"
    for row in devices:
        payload = serialized(anon.device(row))
        assert_absent(payload, forbidden, macs)
        assert payload["data"]["bytes_out"] == row["bytes_out"]
    assert {"port_scan", "dns_tunnel", "beaconing", "arp_spoof"} <= kinds


# -- hostile inputs (hypothesis) -----------------------------------------------------------------------
# Every hostile name carries a marker no payload word contains: if the name leaked, so did the marker.
MARKERS = st.integers(0, 10**6).map(lambda n: f"Qz{n}Wk")
HOSTILE = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12
)  # control characters, quotes, markup, bidi, anything
LDH = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
TLD = st.from_regex(r"\A[a-z]{2,6}\Z")
ADDRESSES = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v))),
    st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v))),
    st.sampled_from(["192.168.1.20", "10.0.0.7", "172.16.5.4", "fe80::1:2", "fd00::7"]),
)
MACS = st.integers(2**40, 2**48 - 1)  # big enough that no count or byte total equals one by chance


SUBDOMAINS = st.lists(LDH, min_size=1, max_size=3)
KNOWN_KEYS = ("peer", "peer_name", "hostname", "examples", "domain", "service", "matched")


@st.composite
def hostile_name(draw: st.DrawFn) -> str:
    """A name the marker makes unique: in a subdomain label (so the registered domain, which may be
    sent, never holds it), or anywhere in a name that is not a well-formed DNS name at all."""
    marker = draw(MARKERS)
    if draw(st.booleans()):
        return ".".join([draw(LDH) + marker.lower(), *draw(SUBDOMAINS), draw(TLD)])
    return draw(HOSTILE) + marker + draw(HOSTILE)


# Evidence is drawn as a shape whose ("pool", i) slots are then filled from the case's hostile
# values: the strategies are built once, which keeps the test fast.
POOL_SLOT = st.integers(0, 10**6).map(lambda i: ("pool", i))
LEAF = st.one_of(POOL_SLOT, st.integers(-5, 5), st.floats(allow_nan=True), st.none(), st.booleans())
KEY = st.one_of(st.sampled_from(KNOWN_KEYS), POOL_SLOT)
EVIDENCE_SHAPE = st.recursive(
    st.dictionaries(KEY, LEAF, max_size=6),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEY, inner, max_size=4)),
    max_leaves=20,
)


def filled(shape: Any, pool: list[str]) -> Any:
    if isinstance(shape, tuple):
        return pool[shape[1] % len(pool)]
    if isinstance(shape, dict):
        return {filled(k, pool): filled(v, pool) for k, v in shape.items()}
    if isinstance(shape, list):
        return [filled(v, pool) for v in shape]
    return shape


@st.composite
def hostile_case(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(hostile_name(), min_size=3, max_size=6))
    ips = draw(st.lists(ADDRESSES, min_size=3, max_size=6))
    macs = draw(st.lists(MACS, min_size=2, max_size=4))
    mac_texts = [":".join(f"{b:02x}" for b in m.to_bytes(6, "big")) for m in macs]
    pool = [*names, *ips, *mac_texts, f"{ips[0]} ({names[0]})", f"tcp/22 (peer {ips[1]})", f"{ips[2]}/24"]
    evidence = filled(draw(EVIDENCE_SHAPE), pool)
    if not isinstance(evidence, dict):
        evidence = {"examples": evidence}
    return {
        "names": names,
        "ips": ips,
        "macs": macs,
        "mac_texts": mac_texts,
        "pool": pool,
        "evidence": evidence,
    }


def forbidden_of(case: dict[str, Any]) -> set[str]:
    forbidden = set(case["names"])
    for ip in case["ips"]:
        forbidden |= ip_forms(ip)
    for mac in case["macs"]:
        forbidden |= mac_forms(mac)
    # An address whose shortest text is a few characters ("::", "::1") could match payload words by
    # accident (the hex of a hash): such texts are checked as whole strings instead.
    return {f for f in forbidden if len(f) >= 7}


def exact_forbidden(case: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for ip in case["ips"]:
        out |= ip_forms(ip)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hostile_case(), pick=st.data())
def test_no_raw_identity_survives_hostile_alerts(case, pick):
    anon = Anonymizer(SECRET)
    draw = pick.draw
    alert = make_alert(
        device=DeviceRef(
            key=case["macs"][0],
            mac=case["mac_texts"][0],
            ip=case["ips"][0],
            name=draw(st.sampled_from(case["names"])),
            type=draw(st.sampled_from(["nas", "phone", case["names"][1]])),
        ),
        kind=draw(st.sampled_from(["port_scan", case["names"][2]])),
        peer=draw(st.sampled_from(case["pool"])),
        summary=" ".join(case["pool"]),
        evidence=case["evidence"],
    )
    payload = serialized(anon.alert(alert))
    assert_absent(payload, forbidden_of(case), set(case["macs"]))
    assert not exact_forbidden(case) & set(strings_in(payload))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hostile_case(), pick=st.data())
def test_no_raw_identity_survives_hostile_device_rows(case, pick):
    anon = Anonymizer(SECRET)
    draw = pick.draw
    pool = case["pool"]
    row = device_row(
        device=case["macs"][0],
        mac=draw(st.sampled_from([case["mac_texts"][0], None, case["names"][0]])),
        ips=case["ips"],
        vendor=case["names"][0],
        hostname=case["names"][1],
        device_type=draw(st.sampled_from(["printer", case["names"][2]])),
        device_type_reasons=pool,
        top_peers=[
            {"ip": draw(st.sampled_from(pool)), "name": draw(st.sampled_from(pool)), "packets": 1, "bytes": 2}
        ],
        ports=[*pool, "tcp/443"],
        protocols=[*pool, "tcp"],
        first_seen=draw(st.sampled_from(pool)),
        sparkline=[1, 2, draw(st.sampled_from(pool))],
    )
    payload = serialized(anon.device(row))
    assert_absent(payload, forbidden_of(case), set(case["macs"]))
    assert not exact_forbidden(case) & set(strings_in(payload))
    assert payload["data"]["ports"] == ["tcp/443"]
