"""Settled alerts keep their evidence packed as JSON: the same alert JSON, read back as a mapping."""

from __future__ import annotations

import json

from heimdal_tui.detect.alerts import AlertBook, AlertState
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.evidence import PackedEvidence, pack_evidence, plain_evidence
from heimdal_tui.detect.model import Finding, Severity

REF = DeviceRef(key=1, mac="02:00:00:00:00:01", ip="192.168.1.5", name="plug", type="smart_plug")
EVIDENCE = {
    "country": "GB",
    "peer": "81.2.69.142",
    "peer_name": "hôte-ünïcode.example",  # non-ASCII survives
    "denied": False,
    "baseline_countries": ["DE", "US"],
    "moved": ("destinations", "volume"),  # a tuple comes back as a list
    "nested": {"a": 1, "b": [1.5, None]},
    "big": 2**62,
    "ratio": 0.1 + 0.2,  # floats round-trip exactly
}


def test_packed_evidence_reads_like_the_dict_it_was() -> None:
    packed = pack_evidence(EVIDENCE)
    assert isinstance(packed, PackedEvidence)
    expected = {**EVIDENCE, "moved": ["destinations", "volume"]}
    assert packed == expected and dict(packed) == expected
    assert packed["ratio"] == 0.1 + 0.2 and packed.get("missing", 7) == 7
    assert len(packed) == len(EVIDENCE) and list(packed) == list(EVIDENCE)
    assert plain_evidence(packed) == expected and type(plain_evidence(packed)) is dict
    assert json.dumps(plain_evidence(packed)) == json.dumps(EVIDENCE)
    assert pack_evidence(packed) is packed  # packed once


def test_evidence_that_does_not_encode_stays_a_dict() -> None:
    odd = {"values": {1, 2}}  # a set: not JSON
    assert pack_evidence(odd) is odd


def _finding(ts: float, peer: str) -> Finding:
    return Finding(
        "geo_violation", 1, peer, ts, Severity.MEDIUM, 6.0, f"first contact {peer}", dict(EVIDENCE)
    )


def test_settled_alerts_are_packed_and_write_the_same_json() -> None:
    book = AlertBook(correlation_window=600.0)
    old = book.add(_finding(0.0, "1.1.1.1"), REF)
    fresh = book.add(_finding(1300.0, "2.2.2.2"), REF)
    assert old is not None and fresh is not None
    before = json.dumps(book.alerts[old.alert.id].to_dict())
    book.settle(1400.0)  # the first alert was last seen 1400 s ago: settled
    settled = book.alerts[old.alert.id]
    assert isinstance(settled.evidence, PackedEvidence)
    assert type(book.alerts[fresh.alert.id].evidence) is dict  # still folding
    assert json.dumps(settled.to_dict()) == before
    # Triage still works on a settled alert, and keeps the evidence.
    acked = book.set_state(old.alert.id, AlertState.ACKNOWLEDGED)
    assert acked.evidence == settled.evidence and acked.state is AlertState.ACKNOWLEDGED


def test_an_alert_a_new_one_replaces_as_its_fold_target_is_packed() -> None:
    book = AlertBook(correlation_window=60.0)
    first = book.add(_finding(0.0, "1.1.1.1"), REF)
    second = book.add(_finding(100.0, "1.1.1.1"), REF)  # past the window: a new alert, same key
    assert first is not None and second is not None and second.new
    assert isinstance(book.alerts[first.alert.id].evidence, PackedEvidence)
    assert type(book.alerts[second.alert.id].evidence) is dict
