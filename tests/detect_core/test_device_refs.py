"""Device refs (how alerts name a device) are kept across batches and made again exactly when what
they show changed: the device's hostname, its guessed type, its first address. Every kept ref
equals the one made from scratch (harness.device_ref); the batch-wide address ranking equals
DeviceTable.first_ip; the remembered senders equal DeviceDirectory.sender.

Regression tests for the speed work of issue 3: refs were made again in every batch; the cache
must never show a stale name, type or address."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.detect.alerts import AlertBook, AlertState
from heimdal_tui.detect.answers import member
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.harness import context_for, device_ref, first_ips, kept_refs, pipeline_empty_packets
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.detect.model import Finding, Severity
from heimdal_tui.devices.identity import IdentityEvidence
from heimdal_tui.devices.locality import address_pair, address_text
from heimdal_tui.pipeline.engine import BatchResult, Pipeline

CAPTURE = str(Path(__file__).resolve().parents[2] / "sample_pcaps" / "home_lan_incidents.pcap")


@pytest.fixture(scope="module")
def fed() -> tuple[Pipeline, DetectionEngine, list[tuple[int | None, int | None]]]:
    """The sample capture through an engine in small batches; per batch, the senders the context
    gave for the app events and those DeviceDirectory.sender gives."""
    pipeline = Pipeline()
    engine = DetectionEngine(pipeline, DetectionSettings(learning=LearningSettings(learning_period=600.0)))
    senders: list[tuple[int | None, int | None]] = []
    for batch in CaptureFile(CAPTURE, chunk_bytes=128 * 1024).batches():
        result = pipeline.feed(batch)
        ctx = context_for(pipeline, result)
        senders += zip(
            ctx.app_devices, [pipeline.directory.sender(ev) for ev in result.app_events], strict=True
        )
        engine.process_context(ctx)
    engine.finish()
    return pipeline, engine, senders


def _ref(pipeline: Pipeline, key: int) -> DeviceRef:
    """The ref a new batch's context gives (refs kept from earlier batches, where still right)."""
    flows = pipeline.flows.open_flows().clear()
    empty = BatchResult(
        packets=pipeline_empty_packets(),
        app_events=[],
        new_flows=flows,
        ended_flows=flows,
        new_devices=[],
        evicted_devices=[],
    )
    return context_for(pipeline, empty).device_ref(key)


def test_every_alert_names_its_device_as_a_fresh_ref_would(fed) -> None:
    pipeline, engine, _ = fed
    assert engine.alerts.alerts
    for key in {alert.device.key for alert in engine.alerts.alerts.values()}:
        assert _ref(pipeline, key) == device_ref(pipeline, key)


def test_an_unchanged_device_keeps_its_ref_object(fed) -> None:
    pipeline, _, _ = fed
    key = next(iter(pipeline.directory.identities))
    assert _ref(pipeline, key) is _ref(pipeline, key)


def test_a_new_hostname_shows_in_the_next_batch(fed) -> None:
    pipeline, _, _ = fed
    key = next(iter(pipeline.directory.identities))
    before = _ref(pipeline, key)
    ident = pipeline.directory.identities[key]
    ident.hostnames["dhcp"] = "renamed-by-test"
    ident.changed()
    after = _ref(pipeline, key)
    assert after.name == "renamed-by-test" != before.name
    assert after == device_ref(pipeline, key)


def test_a_new_type_guess_shows_in_the_next_batch(fed) -> None:
    pipeline, _, _ = fed
    key = next(k for k, ident in pipeline.directory.identities.items() if ident.guess().type != "printer")
    before = _ref(pipeline, key)
    ident = pipeline.directory.identities[key]
    # What a printer says of itself, and nothing else.
    ident.hostnames.clear()
    ident.evidence = IdentityEvidence(mdns_services={"_ipp._tcp.local"}, served_ports={631, 9100})
    ident.changed()
    after = _ref(pipeline, key)
    assert after.type == "printer" != before.type
    assert after == device_ref(pipeline, key)


def test_a_newer_address_shows_in_the_next_batch(fed) -> None:
    pipeline, _, _ = fed
    table = pipeline.devices
    key = int(table.ips["device"][0])
    before = _ref(pipeline, key)
    hi, lo = address_pair("10.99.88.77")
    newest = float(table.ips["last_seen"].max()) + 60.0
    table.add_ips(
        pl.DataFrame(
            {"device": [key], "ip_hi": [hi], "ip_lo": [lo], "first_seen": [newest], "last_seen": [newest]},
            schema=table.ips.schema,
        )
    )
    after = _ref(pipeline, key)
    assert after.ip == "10.99.88.77" != before.ip
    assert after == device_ref(pipeline, key)


def test_a_forgotten_identity_is_not_shown(fed) -> None:
    pipeline, _, _ = fed
    key = next(k for k, ident in pipeline.directory.identities.items() if ident.hostname)
    assert _ref(pipeline, key).name is not None
    pipeline.directory.forget([key])
    after = _ref(pipeline, key)
    assert after.name is None
    assert after.type == "unknown"
    assert after == device_ref(pipeline, key)


def test_refs_are_kept_per_pipeline() -> None:
    one, two = Pipeline(), Pipeline()
    assert kept_refs(one) is kept_refs(one)
    assert kept_refs(one) is not kept_refs(two)


def test_senders_are_those_the_directory_gives(fed) -> None:
    _, _, senders = fed
    assert senders
    assert any(given is not None for given, _ in senders)
    assert all(given == expected for given, expected in senders)


def test_first_ips_ranks_as_device_table_first_ip() -> None:
    """IPv4 before IPv6, then the newest; a tie keeps the table's order (as a stable sort)."""
    rows = [
        (1, "10.0.0.1", 5.0),
        (1, "10.0.0.2", 7.0),  # newest IPv4
        (1, "fe80::1", 9.0),  # newer, but IPv6
        (2, "fe80::2", 3.0),
        (2, "fe80::3", 4.0),  # IPv6 only: the newest
        (3, "192.168.1.9", 2.0),
        (3, "192.168.1.8", 2.0),  # a tie: the first row wins
    ]
    pairs = [address_pair(text) for _, text, _ in rows]
    ips = pl.DataFrame(
        {
            "device": [d for d, _, _ in rows],
            "ip_hi": [hi for hi, _ in pairs],
            "ip_lo": [lo for _, lo in pairs],
            "first_seen": [t for _, _, t in rows],
            "last_seen": [t for _, _, t in rows],
        },
        schema={
            "device": pl.UInt64,
            "ip_hi": pl.UInt64,
            "ip_lo": pl.UInt64,
            "first_seen": pl.Float64,
            "last_seen": pl.Float64,
        },
    )
    ranked = first_ips(ips)
    assert ranked == {
        1: address_pair("10.0.0.2"),
        2: address_pair("fe80::3"),
        3: address_pair("192.168.1.9"),
    }
    assert first_ips(ips.clear()) == {}


def test_first_ips_agrees_with_first_ip_on_a_capture(fed) -> None:
    pipeline, _, _ = fed
    table = pipeline.devices
    ranked = first_ips(table.ips)
    assert ranked
    for device, pair in ranked.items():
        assert address_text(*pair) == table.first_ip(device)


def test_an_updated_alert_keeps_every_field_but_those_a_repeat_changes() -> None:
    book = AlertBook()
    device = DeviceRef(key=7, mac="00:00:00:00:00:07", ip="10.0.0.7", name="seven", type="laptop")
    first = Finding(
        kind="port_scan",
        device=7,
        ts=100.0,
        severity=Severity.MEDIUM,
        score=40.0,
        summary="a",
        evidence={"n": 1},
        peer="10.0.0.9",
    )
    change = book.add(first, device)
    assert change is not None
    book.set_state(change.alert.id, AlertState.ACKNOWLEDGED)
    acknowledged = book.alerts[change.alert.id]
    renamed = dataclasses.replace(device, name="renamed")
    repeat = dataclasses.replace(
        first, ts=130.0, severity=Severity.LOW, score=55.0, summary="b", evidence={"n": 2}
    )
    updated = book.add(repeat, renamed)
    assert updated is not None and not updated.new
    assert updated.alert == dataclasses.replace(
        acknowledged,
        severity=Severity.MEDIUM,  # the highest seen
        score=55.0,
        last_seen=130.0,
        count=2,
        summary="b",
        evidence={"n": 2},
        device=renamed,
    )


def test_member_is_isin() -> None:
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 1 << 63, 50, dtype=np.int64).astype(np.uint64)
    values = np.concatenate((pool[:20], rng.integers(0, 1 << 63, 5000, dtype=np.int64).astype(np.uint64)))
    rng.shuffle(values)
    assert (member(values, pool) == np.isin(values, pool)).all()
    assert not member(values, pool[:0]).any()
    assert member(values[:0], pool).shape == (0,)
