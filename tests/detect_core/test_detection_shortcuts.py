"""The shortcuts of issue 3's second speed pass give what the plain per-row code gives.

Each test compares a shortcut with the straightforward computation it replaced: texts, labels,
names and countries made once per distinct key instead of once per row; a device's minutes learned
in one call; maturity flags compared per run of a device; novelty flags by C-level maps; the guess
ranked once per set of clues and made again only when new evidence can change it; a ref kept while
it shows the same thing; the pending probes' ports as a lookup table; beaconing's medians in plain
floats. A wrong shortcut changes a row, a flag, a baseline, a guess or a number here."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.activity import MinuteRows, Rows, hour_of
from heimdal_tui.detect.baseline import MAX_SAMPLES_PER_HOUR, Baseline
from heimdal_tui.detect.detectors.beaconing import _median
from heimdal_tui.detect.detectors.port_scan import _port_set
from heimdal_tui.detect.extract import Extractor, _distinct
from heimdal_tui.detect.geo import CountryLookup
from heimdal_tui.detect.harness import context_for, device_ref
from heimdal_tui.detect.learning import BaselineBook, _novel_flags
from heimdal_tui.devices.directory import Identity
from heimdal_tui.devices.identity import IdentityEvidence, gives_clues, guess_device_type
from heimdal_tui.devices.locality import address_pair, address_text
from heimdal_tui.pipeline.engine import Pipeline

CAPTURE = str(Path(__file__).resolve().parents[2] / "sample_pcaps" / "home_lan_incidents.pcap")


def test_distinct_gives_one_row_per_key_and_every_rows_key() -> None:
    rng = np.random.default_rng(7)
    hi = rng.integers(0, 3, 500).astype(np.uint64)
    lo = rng.integers(0, 40, 500).astype(np.uint64)
    firsts, which = _distinct(hi, lo)
    keys = list(zip(hi[firsts].tolist(), lo[firsts].tolist(), strict=True))
    assert len(keys) == len(set(keys)) == len(set(zip(hi.tolist(), lo.tolist(), strict=True)))
    assert [keys[w] for w in which] == list(zip(hi.tolist(), lo.tolist(), strict=True))
    for n in (0, 1):
        one, where = _distinct(hi[:n], lo[:n])
        assert one.tolist() == list(range(n)) and where == [0] * n


def _flow_columns(rng: random.Random, n: int) -> dict[str, np.ndarray]:
    """Flows to a few dozen peers (some IPv6, a few unnamed or in no country), proto and ports."""
    peers = [address_pair(f"{rng.choice((8, 23, 104, 151))}.{rng.randrange(256)}.0.{i}") for i in range(30)]
    peers += [address_pair(f"2001:db8::{i:x}") for i in range(5)]
    picked = [rng.choice(peers) for _ in range(n)]
    return {
        "orig_dev": np.array([rng.randrange(1, 6) for _ in range(n)], dtype=np.uint64),
        "resp_dev": np.array([rng.choice((0, 0, 7)) for _ in range(n)], dtype=np.uint64),
        "first_ts": np.sort(np.array([rng.uniform(0, 100) for _ in range(n)])),
        "resp_hi": np.array([h for h, _ in picked], dtype=np.uint64),
        "resp_lo": np.array([lo for _, lo in picked], dtype=np.uint64),
        "orig_hi": np.zeros(n, dtype=np.uint64),
        "orig_lo": np.array(
            [address_pair(f"192.168.1.{rng.randrange(2, 9)}")[1] for _ in range(n)], np.uint64
        ),
        "proto": np.array([rng.choice((6, 6, 17)) for _ in range(n)], dtype=np.int64),
        "resp_p": np.array([rng.choice((443, 80, 53, 22, 8883)) for _ in range(n)], dtype=np.int64),
    }


class _Ctx:
    """What Extractor._destination_rows reads of a context: peer names."""

    def __init__(self, names: dict[tuple[int, int], str]) -> None:
        self.names = names

    def peer_name(self, hi: int, lo: int) -> str | None:
        return self.names.get((hi, lo))


def test_destination_and_service_rows_are_those_made_row_by_row() -> None:
    rng = random.Random(3)
    cols = _flow_columns(rng, 400)
    pairs = set(zip(cols["resp_hi"].tolist(), cols["resp_lo"].tolist(), strict=True))
    names = {pair: f"host{i}.example.co.uk" for i, pair in enumerate(sorted(pairs)) if i % 3}
    countries = CountryLookup()
    extract = Extractor(countries)
    picked = np.flatnonzero(np.array([rng.random() < 0.7 for _ in range(400)]))
    rows = {table: Rows() for table in ("destinations", "domains", "countries")}
    devices = extract._destination_rows(_Ctx(names), rows, cols, picked, with_domains=True)  # type: ignore[arg-type]

    expected = {table: Rows() for table in ("destinations", "domains", "countries")}
    for i in picked.tolist():
        device, t = int(cols["orig_dev"][i]), float(cols["first_ts"][i])
        pair = (int(cols["resp_hi"][i]), int(cols["resp_lo"][i]))
        peer = address_text(*pair)
        expected["destinations"].add([device], [peer], [t], [peer])
        if pair in names:
            expected["domains"].add([device], [".".join(names[pair].split(".")[-3:])], [t], [peer])
        country = countries.country(*pair)
        if country:
            expected["countries"].add([device], [country], [t], [peer])
    assert devices == cols["orig_dev"][picked].tolist()
    assert rows == expected
    assert expected["countries"].devices and expected["domains"].devices

    services = Rows()
    extract._service_rows(services, cols, picked, "orig_dev", "resp", served=False)
    names_of = {6: "tcp", 17: "udp"}
    assert services.values == [f"{names_of[int(cols['proto'][i])]}/{int(cols['resp_p'][i])}" for i in picked]
    assert services.peers == [
        address_text(int(cols["resp_hi"][i]), int(cols["resp_lo"][i])) for i in picked.tolist()
    ]
    assert services.devices == cols["orig_dev"][picked].tolist()
    assert services.ts == cols["first_ts"][picked].tolist()


def _random_minutes(rng: random.Random, n: int, start: float) -> list[tuple[float, float, float]]:
    return [
        (start + 60.0 * i + rng.choice((0, 3600, 7200)), rng.uniform(0, 1e6), rng.uniform(0, 1e5))
        for i in range(n)
    ]


@pytest.mark.parametrize("count", [1, 7, MAX_SAMPLES_PER_HOUR + 25])
def test_learning_minutes_at_once_equals_one_at_a_time(count: int) -> None:
    rng = random.Random(count)
    minutes = _random_minutes(rng, count, 1_710_000_000.0)
    one, many = Baseline(1, 0.0), Baseline(1, 0.0)
    for base in (one, many):
        base.learn_minute(1_709_990_000.0, 5, 10.0, 20.0)  # something learned before
        base.volume("out", 5)  # and a cached volume, which learning must drop
    for start, out, inb in minutes:
        one.learn_minute(start, hour_of(start), out, inb)
    many.learn_minutes([m[0] for m in minutes], [m[1] for m in minutes], [m[2] for m in minutes])
    assert many.to_dict() == one.to_dict()
    assert many.volume("out", 5) == one.volume("out", 5)


def test_the_book_learns_each_minute_before_its_device_matures_and_no_other() -> None:
    rng = random.Random(11)
    book = BaselineBook()
    bases = {device: Baseline(device, 0.0) for device in (3, 5, 9)}
    until = {3: 1_000.0, 5: float("inf"), 9: float("-inf")}
    rows = sorted((device, start) for device in bases for start in rng.sample(range(0, 2_000, 60), 12))
    minutes = MinuteRows(
        np.array([d for d, _ in rows], dtype=np.uint64),
        np.array([float(s) for _, s in rows]),
        np.array([float(i) for i in range(len(rows))]),
        np.array([2.0 * i for i in range(len(rows))]),
    )
    book._learn_minutes(minutes, bases, until, latest=2_000.0)
    expected = [start < until[device] for device, start in rows]
    assert minutes.learned is not None and minutes.learned.tolist() == expected
    for device, base in bases.items():
        mine = [i for i, (d, _) in enumerate(rows) if d == device and expected[i]]
        assert base.minutes_observed == len(mine)
        assert sorted(v for values in base.volume_out.values() for v in values) == [float(i) for i in mine]


def test_rows_are_learned_before_their_device_matures_whichever_way_the_flags_are_made() -> None:
    book = BaselineBook()
    rows = Rows([1, 2, 1, 2], ["a", "b", "c", "a"], [10.0, 20.0, 30.0, 40.0], [None] * 4)
    all_before = {1: 100.0, 2: 100.0}
    bases = {1: Baseline(1, 0.0), 2: Baseline(2, 0.0)}
    assert book._learn_rows("destinations", rows, bases, all_before) == [True] * 4
    assert bases[1].destinations == {"a": 1, "c": 1} and bases[2].destinations == {"b": 1, "a": 1}
    bases = {1: Baseline(1, 0.0), 2: Baseline(2, 0.0)}
    assert book._learn_rows("destinations", rows, bases, {1: 100.0, 2: 30.0}) == [True, True, True, False]
    assert bases[2].destinations == {"b": 1}


def test_novelty_flags_are_what_each_baseline_lacks() -> None:
    bases = {1: Baseline(1, 0.0, destinations={"a": 1}), 2: Baseline(2, 0.0, destinations={"b": 4})}
    flags = _novel_flags("destinations", [1, 2, 1, 2], ["a", "a", "b", "b"], bases)
    assert flags == [False, True, True, False]
    assert _novel_flags("destinations", [], [], bases) == []


def _fresh_guess(ident: Identity) -> tuple[str, float, tuple[str, ...]]:
    made = guess_device_type(dataclasses.replace(ident.evidence, hostname=ident.hostname))
    return made.type, made.confidence, made.reasons


def test_every_kept_guess_is_the_guess_its_evidence_makes_now() -> None:
    """The directory keeps a guess when a host name below the best one, or a User-Agent, SSDP
    server or mDNS service no rule knows, came in: after every batch, each guess equals one made
    from scratch."""
    pipeline = Pipeline()
    checked = 0
    for batch in CaptureFile(CAPTURE, chunk_bytes=64 * 1024).batches():
        pipeline.feed(batch)
        for ident in pipeline.directory.identities.values():
            kept = ident.guess()
            assert (kept.type, kept.confidence, kept.reasons) == _fresh_guess(ident)
            checked += 1
    assert checked > 100


def test_evidence_no_rule_knows_gives_no_clue() -> None:
    assert gives_clues("user_agent", "Roku/DVP-9.10 (519.10E04111A)")
    assert not gives_clues("user_agent", "curl/8.4.0-no-such-device")
    assert gives_clues("mdns", "_IPP._tcp")
    assert not gives_clues("mdns", "_nothing-known._tcp")
    assert not gives_clues("ssdp", "")
    with pytest.raises(ValueError):
        gives_clues("hostname", "x")


def test_a_ref_is_kept_while_what_it_shows_stays() -> None:
    pipeline = Pipeline()
    for batch in CaptureFile(CAPTURE).batches():
        pipeline.feed(batch)
    ctx = context_for(pipeline, pipeline.feed(next(iter(CaptureFile(CAPTURE).batches())).slice(0, 1)))
    key = next(k for k, ident in pipeline.directory.identities.items() if ident.guess().type != "unknown")
    before = ctx.device_ref(key)
    pipeline.directory.identities[key].changed()  # made again: a new guess naming the same type
    after = context_for(pipeline, pipeline.feed(next(iter(CaptureFile(CAPTURE).batches())).slice(0, 1)))
    assert after.device_ref(key) is before
    assert before == device_ref(pipeline, key)
    # What a printer says of itself, the host name kept: only the type changes, and shows.
    ident = pipeline.directory.identities[key]
    ident.evidence = IdentityEvidence(mdns_services={"_ipp._tcp", "_printer._tcp"}, served_ports={631, 9100})
    ident.changed()
    again = context_for(pipeline, pipeline.feed(next(iter(CaptureFile(CAPTURE).batches())).slice(0, 1)))
    retyped = again.device_ref(key)
    assert retyped.type == "printer" != before.type
    assert retyped.name == before.name
    assert retyped == device_ref(pipeline, key)


def test_the_port_table_is_isin() -> None:
    rng = np.random.default_rng(5)
    pool = np.concatenate(([-1, 0, 65_535], rng.integers(-1, 65_536, 40)))
    ports = np.concatenate(([-1, 0, 65_535, 1], rng.integers(-1, 65_536, 5_000), pool[:10]))
    assert np.array_equal(_port_set(pool)[ports + 1], np.isin(ports, pool))


@pytest.mark.parametrize("n", [1, 2, 5, 6, 63])
def test_beaconing_median_is_numpys(n: int) -> None:
    rng = random.Random(n)
    values = [rng.uniform(0, 600) for _ in range(n)]
    assert _median(values) == float(np.median(np.array(values)))
    intervals = np.diff(np.sort(np.array(values)))
    if intervals.shape[0]:
        assert _median(intervals.tolist()) == float(np.median(intervals))


def test_new_evidence_makes_the_guess_again_exactly_when_it_can_change_it() -> None:
    """User-Agents and SSDP servers no rule knows, and host names below the best one, keep the
    guess; the others make it again. Either way the guess is the one the evidence makes now."""
    from heimdal_tui.decode.app.http import HttpRequest
    from heimdal_tui.decode.app.ssdp import SsdpMessage
    from heimdal_tui.decode.app_select import AppEvent
    from heimdal_tui.devices.directory import DeviceDirectory
    from heimdal_tui.devices.locality import Locality

    directory = DeviceDirectory(Locality())
    mac = 0x3C_22_FB_01_02_03
    hi, lo = address_pair("192.168.1.5")

    def event(message: object) -> AppEvent:
        return AppEvent(0, 1.0, 17, hi, lo, 0, 0xFFFF_08_08_08_08, mac, 1, 50_000, 80, message)  # type: ignore[arg-type]

    directory.ingest([event(HttpRequest("GET", "/", "example.com", "curl/8.4.0-no-such-device"))])
    key = directory.sender(event(None))
    assert key is not None
    ident = directory.identities[key]
    steps = [
        lambda: directory.ingest([event(HttpRequest("GET", "/", None, "another-unknown-agent/1.0"))]),
        lambda: directory.ingest([event(HttpRequest("GET", "/", None, "Roku/DVP-9.10 (519.10E04111A)"))]),
        lambda: directory.ingest(
            [event(SsdpMessage("notify", "Linux UPnP/1.0 Sonos/70.3", None, None, None, None))]
        ),
        lambda: directory._set_hostname(key, mac, "mdns", "Living-Room-TV"),
        lambda: directory._set_hostname(key, mac, "dns", "printer-upstairs"),  # below mdns: kept
        lambda: directory._set_hostname(key, mac, "dhcp", "Johns-iPhone"),
        lambda: directory._set_hostname(key, mac, "mdns", "macbook-pro"),  # below dhcp: kept
    ]
    kept = []
    for step in steps:
        before = ident.guess()
        step()
        after = ident.guess()
        assert (after.type, after.confidence, after.reasons) == _fresh_guess(ident)
        kept.append(after is before)
    assert kept == [True, False, False, False, True, False, True]
