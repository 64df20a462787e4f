"""Read-only views of the running engine, as the events and command results carry them.

Everything here runs on the sensor's thread (it reads live engine state) and returns plain,
immutable values that are safe to hand to another thread or to serialise.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import Any

import polars as pl

from heimdal_tui.detect.alerts import ACTIVE_STATES, Alert
from heimdal_tui.detect.context import DeviceRef
from heimdal_tui.detect.engine import DetectionEngine
from heimdal_tui.detect.evidence import plain_evidence
from heimdal_tui.detect.harness import MAC_KEY_LIMIT, device_ref
from heimdal_tui.detect.learning import hour_of
from heimdal_tui.devices.locality import address_text, mac_text
from heimdal_tui.devices.snapshot import snapshot
from heimdal_tui.sensor.events import AlertRow, DeviceRow, DriftRow

# How many items of each baseline table the device view shows (busiest first).
DETAIL_ITEMS = 40
# The device table's columns device_rows reads, in the order it unpacks them.
_DEVICE_COLUMNS = (
    "device", "bps_10s", "bps_1m", "bytes_in", "bytes_out", "packets_in", "packets_out",
    "first_seen", "last_seen",
)  # fmt: skip

# A device's MAC never changes: formatted once, not once a second for every device.
_mac_text = functools.lru_cache(maxsize=16_384)(mac_text)


def alert_row(alert: Alert, labels: dict[int, str]) -> AlertRow:
    ref = alert.device
    name = labels.get(ref.key) or ref.name or ref.ip or ref.mac or str(ref.key)
    return AlertRow(
        id=alert.id,
        kind=alert.kind,
        severity=alert.severity.value,
        score=round(alert.score, 1),
        state=alert.state.value,
        device_key=ref.key,
        device_name=name,
        device_ip=ref.ip,
        device_mac=ref.mac,
        peer=alert.peer,
        ts=alert.ts,
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
        count=alert.count,
        summary=alert.summary,
        evidence=plain_evidence(alert.evidence),
    )


def open_alerts_by_device(alerts: Iterable[Alert]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for alert in alerts:
        if alert.state in ACTIVE_STATES:
            counts[alert.device.key] = counts.get(alert.device.key, 0) + 1
    return counts


def device_rows(engine: DetectionEngine, labels: dict[int, str]) -> tuple[DeviceRow, ...]:
    """Every device, busiest first (by bytes over the last 10 s, then in total).

    Runs once a second on the sensor's thread with up to thousands of devices: everything is read
    in whole-table passes (no per-device query), as plain tuples (a dict per row costs more than
    the rest of the row). In-process with the console this holds the interpreter while it runs.
    """
    pipeline = engine.pipeline
    table = pipeline.devices
    if table.devices.height == 0:
        return ()
    frame = table.devices.join(table.rates(), on="device", how="left")
    addresses: dict[int, list[str]] = {}
    # IPv4 before IPv6, each in the order the device first used them: its own address comes
    # before one it later claimed (an ARP spoofer claiming the gateway's keeps its own first).
    for device, hi, lo in (
        table.ips.sort([pl.col("ip_hi") != 0, pl.col("first_seen")])
        .select("device", "ip_hi", "ip_lo")
        .iter_rows()
    ):
        addresses.setdefault(int(device), []).append(address_text(int(hi), int(lo)))
    peers = dict(table.peers.group_by("device").len().iter_rows())
    sparks = table.sparklines()
    alerts = open_alerts_by_device(engine.alerts.alerts.values())
    identities = pipeline.directory.identities
    book = engine.book
    rows = []
    for (
        device,
        bps_10s,
        bps_1m,
        bytes_in,
        bytes_out,
        packets_in,
        packets_out,
        first_seen,
        last_seen,
    ) in frame.select(_DEVICE_COLUMNS).iter_rows():
        key = int(device)
        ident = identities.get(key)
        guess = ident.guess() if ident is not None else None
        mac = _mac_text(key) if key < MAC_KEY_LIMIT else None
        hostname = ident.hostname if ident is not None else None
        ips = tuple(addresses.get(key, ()))
        label = labels.get(key)
        drift = engine.drift.latest(key)
        base = book.baselines.get(key)
        rows.append(
            DeviceRow(
                key=key,
                name=label or hostname or (ips[0] if ips else None) or mac or str(key),
                label=label,
                hostname=hostname,
                mac=mac,
                vendor=ident.evidence.vendor if ident is not None else None,
                type=guess.type if guess is not None else "unknown",
                type_confidence=round(guess.confidence, 2) if guess is not None else 0.0,
                ips=ips,
                bps=round(float(bps_10s or 0.0), 1),
                bps_1m=round(float(bps_1m or 0.0), 1),
                bytes_in=int(bytes_in),
                bytes_out=int(bytes_out),
                packets=int(packets_in) + int(packets_out),
                peers=int(peers.get(key, 0)),
                first_seen=float(first_seen),
                last_seen=float(last_seen),
                open_alerts=alerts.get(key, 0),
                drift=drift.score if drift else None,
                maturity=round(book.maturity(key), 3),
                frozen=bool(base.frozen) if base else False,
                sparkline=tuple(sparks.get(key, ())),
            )
        )
    rows.sort(key=lambda row: (-row.bps, -(row.bytes_in + row.bytes_out), row.key))
    return tuple(rows)


def engine_ref(engine: DetectionEngine, key: int) -> DeviceRef:
    return device_ref(engine.pipeline, key)


def drift_rows(engine: DetectionEngine, labels: dict[int, str]) -> tuple[DriftRow, ...]:
    """Every device with a drift history, most drifted first."""
    rows = []
    for key, points in engine.drift.history.items():
        if not points:
            continue
        latest = points[-1]
        ref = engine_ref(engine, key)
        pending = engine.drift.pending.get(key)
        waiting = 0
        if pending is not None:
            waiting = sum(
                len(getattr(pending, t)) for t in ("destinations", "services", "protocols", "countries")
            )
        rows.append(
            DriftRow(
                key=key,
                name=labels.get(key) or ref.name or ref.ip or ref.mac or str(key),
                score=latest.score,
                ts=latest.ts,
                history=points.scores(),
                features=dict(latest.features),
                moved=tuple(latest.moved),
                pending=waiting,
            )
        )
    rows.sort(key=lambda row: (-row.score, row.key))
    return tuple(rows)


def device_detail(engine: DetectionEngine, key: int, labels: dict[int, str]) -> dict[str, Any]:
    """One device in depth: identity, its baseline beside what it does now, its alerts.

    KeyError when the device is unknown.
    """
    pipeline = engine.pipeline
    rows = snapshot_rows(engine, key)
    if not rows:
        raise KeyError(f"no device {key}")
    current = rows[0]
    base = engine.book.baselines.get(key)
    baseline: dict[str, Any] | None = None
    if base is not None:
        baseline = {
            "profile": base.profile,
            "frozen": base.frozen,
            "first_seen": base.first_seen,
            "minutes_observed": base.minutes_observed,
            "maturity": round(engine.book.maturity(key), 3),
            "mature": engine.book.mature(key),
            "destinations": _top(base.destinations),
            "domains": _top(base.domains),
            "services": _top(base.services),
            "protocols": _top(base.protocols),
            "countries": _top(base.countries),
            "active_hours": sorted(base.active_hours),
            "volume_by_hour": _volume_by_hour(base),
        }
    known_services = set(base.services) if base else set()
    known_protocols = set(base.protocols) if base else set()
    known_destinations = set(base.destinations) if base else set()
    destinations = []
    for peer in current["top_peers"]:
        destinations.append(
            {
                "ip": peer["ip"],
                "name": peer["name"],
                "bytes": peer["bytes"],
                "new": base is not None and peer["ip"] not in known_destinations,
            }
        )
    now_hour = hour_of(pipeline.devices.now) if pipeline.devices.now else None
    alerts = [
        alert_row(a, labels)
        for a in sorted(engine.alerts.alerts.values(), key=lambda a: a.last_seen, reverse=True)
        if a.device.key == key
    ]
    return {
        "key": key,
        "name": labels.get(key) or current["hostname"] or (current["ips"] or [None])[0] or current["mac"],
        "label": labels.get(key),
        "identity": {
            "mac": current["mac"],
            "vendor": current["vendor"],
            "randomized_mac": current["randomized_mac"],
            "hostname": current["hostname"],
            "hostname_source": current["hostname_source"],
            "type": current["device_type"],
            "type_confidence": current["device_type_confidence"],
            "type_reasons": current["device_type_reasons"],
            "ips": current["ips"],
            "first_seen": current["first_seen"],
            "last_seen": current["last_seen"],
        },
        "current": {
            "destinations": destinations,
            "services": [
                {"service": s, "new": base is not None and s not in known_services}
                for s in current["ports"][:DETAIL_ITEMS]
            ],
            "protocols": [
                {"protocol": p, "new": base is not None and p not in known_protocols}
                for p in current["protocols"]
            ],
            "bytes_in": current["bytes_in"],
            "bytes_out": current["bytes_out"],
            "bps_1m": current["bps_1m"],
            "hour": now_hour,
            "bytes_out_per_minute": round(_recent_per_minute(pipeline, key, "bytes_out"), 1),
            "bytes_in_per_minute": round(_recent_per_minute(pipeline, key, "bytes_in"), 1),
            "sparkline": current["sparkline"],
        },
        "baseline": baseline,
        "alerts": [_row_dict(a) for a in alerts],
    }


def snapshot_rows(engine: DetectionEngine, key: int) -> list[dict[str, Any]]:
    """The analyze-style snapshot of one device (its row of the device table)."""
    pipeline = engine.pipeline
    table = pipeline.devices
    return [row for row in snapshot(table, pipeline.directory) if row["device"] == key]


def _recent_per_minute(pipeline: Any, key: int, column: str) -> float:
    """Mean bytes per minute over the device's last five minutes of history."""
    table = pipeline.devices
    b = table.limits.bucket_seconds
    current = int(table.now // b)
    buckets = max(round(300 / b), 1)
    recent = table.history.filter((pl.col("device") == key) & (pl.col("bucket") > current - buckets))
    if recent.height == 0:
        return 0.0
    return float(recent[column].sum()) / 5.0


def _top(counts: dict[str, int]) -> list[dict[str, Any]]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:DETAIL_ITEMS]
    return [{"value": value, "count": count} for value, count in ordered]


def _volume_by_hour(base: Any) -> list[dict[str, Any]]:
    hours = sorted(set(base.volume_out) | set(base.volume_in))
    out = []
    for hour in hours:
        median_out, spread_out, samples = base.volume("out", hour)
        median_in, _spread_in, _ = base.volume("in", hour)
        out.append(
            {
                "hour": hour,
                "bytes_out_median": round(median_out, 1),
                "bytes_out_spread": round(spread_out, 1),
                "bytes_in_median": round(median_in, 1),
                "samples": samples,
            }
        )
    return out


def _row_dict(row: AlertRow) -> dict[str, Any]:
    return dataclasses.asdict(row)
