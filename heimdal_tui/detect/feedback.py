"""What the engine learns when the operator marks an alert a false positive.

Behaviour alerts teach the device's baseline (the destination, service, protocol, country, hour or
traffic volume joins it); the others (scans, spoofing, tunnels, beacons, brute force, intel hits)
put (device, kind, peer) on the allowlist so the same finding no longer alerts. Either way the
returned description goes into the audit trail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from heimdal_tui.detect.alerts import Alert
from heimdal_tui.detect.learning import Activity, Item, Minute

if TYPE_CHECKING:
    from heimdal_tui.detect.engine import DetectionEngine

BASELINE_KINDS = (
    "new_destination",
    "new_port",
    "protocol_anomaly",
    "geo_violation",
    "timing_anomaly",
    "volume_spike",
    "new_device",
)


def learn_from_false_positive(engine: DetectionEngine, alert: Alert) -> dict[str, Any]:
    device = alert.device.key
    ev = alert.evidence
    items = Activity()
    ts = alert.last_seen
    if alert.kind == "new_destination":
        items.destinations = [Item(str(v), ts) for v in ev.get("new_destination_values", [])]
    elif alert.kind == "new_port":
        suffix = " (served)" if ev.get("role") == "served" else ""
        items.services = [Item(f"{v}{suffix}", ts) for v in ev.get("new_services", [])]
    elif alert.kind == "protocol_anomaly":
        service = str(ev.get("service", ""))
        if service.startswith("ip-"):
            items.protocols = [Item(service, ts)]
        else:
            items.services = [Item(service, ts)]
    elif alert.kind == "geo_violation":
        items.countries = [Item(str(ev.get("country")), ts)]
    elif alert.kind == "volume_spike":
        observed = float(ev.get("observed_bytes", 0))
        start = alert.first_seen - 60.0
        out_bytes, in_bytes = (observed, 0.0) if ev.get("direction") == "out" else (0.0, observed)
        items.minutes = [Minute(start, out_bytes, in_bytes)]
    elif alert.kind == "timing_anomaly":
        items.minutes = [Minute(alert.first_seen, 0.0, 0.0)]
    if alert.kind in BASELINE_KINDS:
        if alert.kind != "new_device":
            engine.book.learn_items(device, items)
            engine.save_baselines()
        learned = {
            table: [i.value for i in getattr(items, table)]
            for table in ("destinations", "services", "protocols", "countries")
            if getattr(items, table)
        }
        if items.minutes:
            learned["minutes"] = [f"{m.bytes_out + m.bytes_in:.0f} bytes" for m in items.minutes]
        return {"baseline": learned}
    engine.alerts.allowlist.add((device, alert.kind, alert.peer))
    if engine.store is not None:
        engine.store.add_allowlist(
            alert.kind, alert.peer or "", device_key=device, reason="false positive", created=engine.now
        )
    return {"allowlist": {"device": device, "kind": alert.kind, "peer": alert.peer}}
