"""A service counts in the batch whose packet answers it, not when its flow ends (live batches are a
fraction of a second: an answer almost always comes in a later batch than the question).

Real pipeline and engine, frames built with scapy and fed one batch at a time as the live runner
does.
"""

from __future__ import annotations

from typing import Any

from scapy.all import IP, TCP, UDP, Ether

from heimdal_tui.capture.frames import FrameBatch
from heimdal_tui.detect.alerts import AlertChange
from heimdal_tui.detect.engine import DetectionEngine, DetectionSettings
from heimdal_tui.detect.learning import LearningSettings
from heimdal_tui.pipeline.engine import Pipeline

T0 = 1_760_000_000.0
ROUTER_MAC = "02:00:00:00:00:01"
PLUG_MAC, PLUG_IP = "02:00:00:00:00:0a", "192.168.1.10"
NAS_MAC, NAS_IP = "02:00:00:00:00:0b", "192.168.1.11"
REMOTE = "93.184.216.34"


def _frame(ts: float, pkt: Any) -> tuple[float, bytes, int]:
    raw = bytes(pkt)
    return (ts, raw, len(raw))


def _tcp(ts: float, smac: str, dmac: str, src: str, dst: str, sport: int, dport: int, flags: str):
    return _frame(
        ts, Ether(src=smac, dst=dmac) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)
    )


def _udp(ts: float, smac: str, dmac: str, src: str, dst: str, sport: int, dport: int):
    return _frame(ts, Ether(src=smac, dst=dmac) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / b"x")


def _engine() -> tuple[DetectionEngine, list[tuple[int, AlertChange]]]:
    # A learning period of one second: everything after the first second is new behaviour.
    engine = DetectionEngine(Pipeline(), DetectionSettings(learning=LearningSettings(learning_period=1.0)))
    raised: list[tuple[int, AlertChange]] = []
    return engine, raised


def _feed(engine: DetectionEngine, raised: list, batches: list[list[tuple[float, bytes, int]]]) -> None:
    batch = 0

    def note(change: AlertChange) -> None:
        raised.append((batch, change))

    engine.subscribers.append(note)
    for batch, frames in enumerate(batches):  # noqa: B007 (note() reads it)
        engine.feed(FrameBatch.from_frames(frames))


def _warm_up() -> list[tuple[float, bytes, int]]:
    """Both devices talk for a while first, so their baselines exist and are mature."""
    frames = []
    for i in range(3):
        frames.append(_udp(T0 + i, PLUG_MAC, ROUTER_MAC, PLUG_IP, "192.168.1.1", 40000 + i, 53))
        frames.append(_udp(T0 + i + 0.01, ROUTER_MAC, PLUG_MAC, "192.168.1.1", PLUG_IP, 53, 40000 + i))
        frames.append(_udp(T0 + i, NAS_MAC, ROUTER_MAC, NAS_IP, "192.168.1.1", 41000 + i, 53))
    return frames


def test_a_tcp_service_is_reported_in_the_batch_of_its_syn_ack():
    engine, raised = _engine()
    t = T0 + 10
    batches = [
        _warm_up(),
        [_tcp(t, PLUG_MAC, ROUTER_MAC, PLUG_IP, REMOTE, 50000, 8443, "S")],  # the question
        [_tcp(t + 0.05, ROUTER_MAC, PLUG_MAC, REMOTE, PLUG_IP, 8443, 50000, "SA")],  # its answer
        [_tcp(t + 0.06, PLUG_MAC, ROUTER_MAC, PLUG_IP, REMOTE, 50000, 8443, "A")],
        [_tcp(t + 30, PLUG_MAC, ROUTER_MAC, PLUG_IP, REMOTE, 50000, 8443, "FA")],  # the flow ends
    ]
    _feed(engine, raised, batches)
    ports = [(n, c.alert) for n, c in raised if c.alert.kind == "new_port" and c.new]
    assert ports, "no new_port alert"
    batch, alert = ports[0]
    assert batch == 2, f"raised in batch {batch}, not with the answer"
    assert "tcp/8443" in alert.evidence["new_services"]
    assert alert.first_seen == t  # the flow's own first time, as when seen at its end


def test_a_udp_service_served_is_reported_with_the_reply_and_a_reset_is_no_answer():
    engine, raised = _engine()
    t = T0 + 10
    batches = [
        _warm_up(),
        [
            _udp(t, PLUG_MAC, NAS_MAC, PLUG_IP, NAS_IP, 52000, 9999),  # answered next batch
            _tcp(t, PLUG_MAC, NAS_MAC, PLUG_IP, NAS_IP, 52001, 7777, "S"),  # refused next batch
        ],
        [
            _udp(t + 0.05, NAS_MAC, PLUG_MAC, NAS_IP, PLUG_IP, 9999, 52000),
            _tcp(t + 0.05, NAS_MAC, PLUG_MAC, NAS_IP, PLUG_IP, 7777, 52001, "RA"),
        ],
        [_udp(t + 1, PLUG_MAC, ROUTER_MAC, PLUG_IP, "192.168.1.1", 40100, 53)],
    ]
    _feed(engine, raised, batches)
    served = [(n, c.alert) for n, c in raised if c.alert.kind == "new_port" and c.alert.peer == "served"]
    assert served and served[0][0] == 2
    assert served[0][1].evidence["new_services"] == ["udp/9999"]
    assert not any("7777" in str(c.alert.evidence) for _, c in raised)


def test_a_flow_that_ended_in_its_first_batch_is_not_watched():
    """Its ended row already told everything; a later packet of the same 5-tuple is another flow."""
    engine, raised = _engine()
    t = T0 + 10
    batches = [
        _warm_up(),
        [_udp(t, PLUG_MAC, NAS_MAC, PLUG_IP, NAS_IP, 53000, 6000)],
        [_udp(t + 200, NAS_MAC, PLUG_MAC, NAS_IP, PLUG_IP, 6000, 53000)],  # after the UDP idle timeout
    ]
    _feed(engine, raised, batches)
    used = [c.alert for _, c in raised if c.alert.kind == "new_port" and c.alert.peer == "used"]
    assert not used, [a.summary for a in used]
    watch = engine.book.extract.answers
    assert len(watch) <= 1  # at most the second flow (the NAS's), waiting for its own answer
